/**
 * The decision a job's history records, `trimDecision` of what `broker`
 * decides over every site, at a cost that does not grow with the grid: the
 * sites are ranked once per read and job shape (`ShapeRanking`), and a job
 * weighs again only the sites that hold its inputs and leaves out those it
 * failed at; the draw runs on exact running sums of the ranking, patched.
 * Per job it costs about (sites patched + candidates recorded) x log(sites).
 */
import { PatchedRanking } from "../brokerage/patched-ranking.js";
import { type InputLocality, inputLocality } from "../brokerage/score.js";
import { rankShape, restrictsAccess, type ShapeRanking, shapeKeyOf } from "../brokerage/shape-ranking.js";
import { isScored, type ScoredVerdict, siteVerdict } from "../brokerage/site-verdict.js";
import type {
  BrokerageConfig,
  BrokerageDecision,
  CandidateVerdict,
  DrawRecord,
  JobNeeds,
  SiteSnapshot,
} from "../brokerage/types.js";
import { drawIndex } from "../brokerage/weighted-draw.js";
import { byName, byScore, keptInNameOrder, leftOutAsFailedBefore } from "./decision-record.js";

export interface RecordedDecisionInput {
  job: JobNeeds;
  /** A read of every site shared by many decisions (frozen, as the brokerage service keeps it). */
  sites: readonly SiteSnapshot[];
  replicas: Readonly<Record<string, readonly string[]>>;
  /** Sites an earlier attempt failed at: left out before scoring. */
  excludedSites: readonly string[];
  nowMs: number;
  config: BrokerageConfig;
  random: number;
  /** Fewer than the sites: the record is trimmed (see `trimDecision`). */
  maxRecorded: number;
}

export function decideRecorded(input: RecordedDecisionInput): BrokerageDecision {
  const { job, nowMs, config } = input;
  const nowhere = inputLocality(job, new Set());
  const ranking = rankingFor(job, nowhere, input.sites, nowMs, config);
  const patch = patchFor(input, ranking);
  const ranked = new PatchedRanking(ranking, patch.removed, patch.scored);

  const among = Math.min(config.randomTopCandidates, ranked.count);
  const outcome =
    among > 1 ? drawIndex({ count: among, prefix: (n) => ranked.prefix(n) }, input.random) : null;
  const chosen = ranked.count > 0 ? ranked.at(outcome?.index ?? 0) : null;
  const room = input.maxRecorded - (chosen ? 1 : 0);
  const best = firstMerged(
    ranking.best,
    [...patch.scored].sort(byScore),
    byScore,
    room,
    (c, inBase) => c.site !== chosen?.site && !(inBase && patch.removed.has(c.site)),
  );
  // Only as many as the record has room for after the best: each is weighed again.
  const excluded = firstMerged(
    ranking.excluded,
    [...patch.excluded].sort((a, b) => byName(a.site, b.site)),
    (a, b) => byName(a.site, b.site),
    room - best.length,
    (c, inBase) => !(inBase && patch.removed.has(c.site)),
  ).map((c) =>
    // The ranking took them at its time: a reason may read the time (how long pilots were silent).
    patch.removed.has(c.site) ? c : siteVerdict(job, ranking.sites.get(c.site)!, nowhere, { nowMs, config }),
  );
  const kept = keptInNameOrder(chosen ? [chosen] : [], best, excluded, input.maxRecorded);
  const missing = (chosen && patch.localities.get(chosen.site))?.missing ?? (chosen ? nowhere.missing : []);
  return {
    jobId: job.jobId,
    chosenSite: chosen?.site ?? null,
    candidates: kept,
    ...(outcome ? { draw: keptDraw(ranked, among, outcome.totalWeight, kept) } : {}),
    filesToMove: missing.map((f) => f.lfn),
    bytesToMove: missing.reduce((sum, f) => sum + f.sizeBytes, 0),
    atMs: nowMs,
    omittedCandidates: ranking.sites.size - kept.length,
  };
}

interface Patch {
  /** Sites taken out of the ranking: weighed again for this job, or left out. */
  removed: Set<string>;
  /** Sites weighed again that passed every filter, and those that did not or were left out. */
  scored: ScoredVerdict[];
  excluded: CandidateVerdict[];
  /** The locality of each site weighed again. */
  localities: Map<string, InputLocality>;
}

/** What differs for this job from the shape's ranking: the sites it failed at, and those holding its inputs. */
function patchFor(input: RecordedDecisionInput, ranking: ShapeRanking): Patch {
  const patch: Patch = { removed: new Set(), scored: [], excluded: [], localities: new Map() };
  for (const name of input.excludedSites) {
    if (!ranking.sites.has(name) || patch.removed.has(name)) continue;
    patch.removed.add(name);
    patch.excluded.push(leftOutAsFailedBefore(name));
  }
  for (const [name, lfns] of Object.entries(input.replicas)) {
    const site = ranking.sites.get(name);
    if (!site || lfns.length === 0 || patch.removed.has(name)) continue;
    patch.removed.add(name);
    const locality = inputLocality(input.job, new Set(lfns));
    patch.localities.set(name, locality);
    const verdict = siteVerdict(input.job, site, locality, { nowMs: input.nowMs, config: input.config });
    if (isScored(verdict)) patch.scored.push(verdict);
    else patch.excluded.push(verdict);
  }
  return patch;
}

/** The draw as a trimmed record keeps it: the kept sites drawn among and the lowest of the draw, best first. */
function keptDraw(
  ranked: PatchedRanking,
  among: number,
  totalWeight: number,
  kept: readonly CandidateVerdict[],
): DrawRecord {
  const ranks = new Set<number>([among - 1]);
  for (const c of kept) {
    const rank = ranked.rankOf(c.site);
    if (rank !== undefined && rank < among) ranks.add(rank);
  }
  const candidates = [...ranks]
    .sort((a, b) => a - b)
    .map((rank) => {
      const verdict = ranked.at(rank);
      return { site: verdict.site, weight: verdict.score };
    });
  return { among, totalWeight, candidates };
}

/**
 * The first `count` of two lists sorted by `order`, merged, keeping what
 * `keep` accepts (told whether it came from the first list).
 */
function firstMerged<T>(
  base: readonly T[],
  extra: readonly T[],
  order: (a: T, b: T) => number,
  count: number,
  keep: (item: T, inBase: boolean) => boolean,
): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (out.length < count && (i < base.length || j < extra.length)) {
    const inBase = j >= extra.length || (i < base.length && order(base[i]!, extra[j]!) <= 0);
    const item = inBase ? base[i++]! : extra[j++]!;
    if (keep(item, inBase)) out.push(item);
  }
  return out;
}

/** The rankings of one read of the sites: per job shape, rebuilt when time outlasts their verdicts. */
interface Rankings {
  config: BrokerageConfig;
  accessRestricted: boolean;
  byShape: Map<string, ShapeRanking>;
}

const rankingsByRead = new WeakMap<readonly SiteSnapshot[], Rankings>();

function rankingFor(
  job: JobNeeds,
  nowhere: InputLocality,
  sites: readonly SiteSnapshot[],
  nowMs: number,
  config: BrokerageConfig,
): ShapeRanking {
  let rankings = rankingsByRead.get(sites);
  if (!rankings || rankings.config !== config) {
    rankings = { config, accessRestricted: restrictsAccess(sites), byShape: new Map() };
    rankingsByRead.set(sites, rankings);
  }
  const key = shapeKeyOf(job, nowhere, config, rankings.accessRestricted);
  let ranking = rankings.byShape.get(key);
  if (!ranking || nowMs < ranking.builtAtMs || nowMs > ranking.validUntilMs) {
    ranking = rankShape(job, sites, { nowMs, config, nameOrder: byName });
    rankings.byShape.set(key, ranking);
  }
  return ranking;
}
