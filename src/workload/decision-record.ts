/**
 * How a brokerage decision is recorded in the job's history: candidates in
 * site name order, the verdicts of sites left out before scoring, and the
 * trimming that keeps the record small on a big grid.
 */
import type { BrokerageDecision, CandidateVerdict, DrawRecord, SiteSnapshot } from "../brokerage/types.js";

/** Site names in `localeCompare` order (the collator it uses, built once: comparing through it is much cheaper). */
export const byName = new Intl.Collator().compare;

/** Best score first, then name order: the order a trimmed record keeps the best scored in. */
export function byScore(a: CandidateVerdict, b: CandidateVerdict): number {
  return (b.score ?? 0) - (a.score ?? 0) || byName(a.site, b.site);
}

const NO_COMPONENTS: CandidateVerdict["components"] = {
  load: 0,
  assignedDamping: 0,
  locality: 0,
  failure: 0,
  pilotRate: 0,
  localBytes: 0,
  filesToMove: 0,
};

/** A site an earlier attempt of the job failed at: left out before scoring. */
export function leftOutAsFailedBefore(site: string): CandidateVerdict {
  return leftOut(site, "excluded", "an earlier attempt of this job failed here");
}

/** Any site but the one the job asked for: left out before scoring. */
export function leftOutAsNotRequested(site: string, requestedSite: string): CandidateVerdict {
  return leftOut(site, "requestedSite", `the job asked for site ${requestedSite}`);
}

function leftOut(site: string, filter: "excluded" | "requestedSite", reason: string): CandidateVerdict {
  return { site, excluded: [{ filter, reason }], components: { ...NO_COMPONENTS } };
}

/**
 * Each site's place in name order, per list of snapshots (a cached read is
 * shared by every decision until it is refreshed), so that a decision's
 * candidates are put in name order by placing each at its index instead of
 * sorting. Null when the collator ties two names: then they are sorted.
 */
const nameRanks = new WeakMap<readonly SiteSnapshot[], Map<string, number> | null>();

export function nameRanksOf(snapshots: readonly SiteSnapshot[]): Map<string, number> | null {
  let ranks = nameRanks.get(snapshots);
  if (ranks === undefined) {
    const names = snapshots.map((s) => s.name).sort(byName);
    ranks = new Map(names.map((name, i) => [name, i]));
    if (ranks.size !== names.length || names.some((name, i) => i > 0 && byName(names[i - 1]!, name) === 0))
      ranks = null;
    nameRanks.set(snapshots, ranks);
  }
  return ranks;
}

/** The candidates (one per site of `snapshots`) in site name order. */
export function inNameOrder(
  candidates: CandidateVerdict[],
  snapshots: readonly SiteSnapshot[],
): CandidateVerdict[] {
  const ranks = nameRanksOf(snapshots);
  if (ranks === null || candidates.length !== ranks.size)
    return candidates.sort((a, b) => byName(a.site, b.site));
  const placed: CandidateVerdict[] = new Array(candidates.length);
  for (const candidate of candidates) {
    const rank = ranks.get(candidate.site);
    if (rank === undefined || placed[rank] !== undefined)
      return candidates.sort((a, b) => byName(a.site, b.site));
    placed[rank] = candidate;
  }
  return placed;
}

/**
 * Keeps the chosen site, then the best scored, then the excluded (in name
 * order) up to `max` candidates, and counts the rest: what an operator asks
 * "why there" about survives, while the record stays small on a big grid.
 */
export function trimDecision(decision: BrokerageDecision, max: number | null): BrokerageDecision {
  if (max === null || decision.candidates.length <= max) return decision;
  const chosen = decision.candidates.filter((c) => c.site === decision.chosenSite);
  const room = max - chosen.length;
  // The best `room` scored, best first, kept by insertion: one pass instead of sorting every site.
  const best: CandidateVerdict[] = [];
  const excluded: CandidateVerdict[] = [];
  for (const c of decision.candidates) {
    if (c.site === decision.chosenSite) continue;
    if (c.score === undefined) {
      if (excluded.length < room) excluded.push(c);
      continue;
    }
    if (room <= 0 || (best.length === room && byScore(c, best[room - 1]!) >= 0)) continue;
    let i = best.length;
    while (i > 0 && byScore(c, best[i - 1]!) < 0) i--;
    best.splice(i, 0, c);
    if (best.length > room) best.pop();
  }
  const kept = keptInNameOrder(chosen, best, excluded, max);
  return {
    ...decision,
    candidates: kept,
    ...(decision.draw ? { draw: drawOfKept(decision.draw, kept) } : {}),
    omittedCandidates: decision.candidates.length - kept.length,
  };
}

/** What a trimmed record keeps: the chosen, the best, then the excluded, at most `max`, in name order. */
export function keptInNameOrder(
  chosen: readonly CandidateVerdict[],
  best: readonly CandidateVerdict[],
  excluded: readonly CandidateVerdict[],
  max: number,
): CandidateVerdict[] {
  return [...chosen, ...best, ...excluded].slice(0, max).sort((a, b) => byName(a.site, b.site));
}

/**
 * The draw as a trimmed decision records it: the weights of the kept
 * candidates that were drawn among, and the lowest of the draw (what a kept
 * site left out of the draw fell below), with the count and total weight
 * that state each one's chance.
 */
function drawOfKept(draw: DrawRecord, kept: readonly CandidateVerdict[]): DrawRecord {
  const keptSites = new Set(kept.map((c) => c.site));
  const lowest = draw.candidates.at(-1);
  return {
    among: draw.among,
    totalWeight: draw.totalWeight,
    candidates: draw.candidates.filter((c) => keptSites.has(c.site) || c === lowest),
  };
}
