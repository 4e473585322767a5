import { z } from "zod";
import type { JobInputFile } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import { broker } from "../brokerage/broker.js";
import type {
  BrokerageDecision,
  CandidateVerdict,
  DrawRecord,
  JobNeeds,
  SiteSnapshot,
} from "../brokerage/types.js";
import { validate } from "../protocol/codec.js";
import type { EffectContext } from "../runtime/runtime.js";
import { readContext, sendOnce, type WorkloadContext } from "./context.js";
import { siteSnapshotOf } from "./site-snapshot.js";
import { listSites } from "./sites.js";

/** The job's `broker.request` effect, as `src/actors/job/outbound.ts` builds it. */
const brokerRequestSchema = z.object({
  jobId: z.string(),
  taskId: z.string(),
  attempt: z.number().int(),
  type: z.enum(["production", "analysis"]),
  user: z.string(),
  group: z.string().nullable(),
  priority: z.number().int(),
  resources: z.object({
    cores: z.number().int(),
    memoryMb: z.number().int(),
    diskMb: z.number().int(),
    walltimeSec: z.number().int(),
  }),
  release: z.string().nullable(),
  inputs: z.array(
    z.object({ lfn: z.string(), sizeBytes: z.number(), checksum: z.string(), dataset: z.string() }),
  ),
  excludedSites: z.array(z.string()),
  requestedSite: z.string().nullable().default(null),
});
type BrokerRequest = z.infer<typeof brokerRequestSchema>;

/** Where the job's inputs are: complete lfns per site, and the lfns no dataset holds yet. */
interface InputLocations {
  replicas: Record<string, string[]>;
  notProduced: string[];
}

async function locateInputs(ctx: WorkloadContext, inputs: JobInputFile[]): Promise<InputLocations> {
  const replicas: Record<string, Set<string>> = {};
  const notProduced: string[] = [];
  const byDataset = new Map<string, JobInputFile[]>();
  for (const file of inputs) {
    const files = byDataset.get(file.dataset);
    if (files) files.push(file);
    else byDataset.set(file.dataset, [file]);
  }
  for (const [name, files] of byDataset) {
    const dataset = await readContext(ctx, "dataset", name, { resident: true });
    // The sites holding each wanted file, in the dataset's site order: one pass over its replica lists
    // instead of a set per site of every file (a task's dataset has hundreds of files, a job reads few).
    const wanted = new Set(files.map((f) => f.lfn));
    const holdersOf = new Map<string, string[]>();
    for (const [site, lfns] of Object.entries(dataset?.context.replicas ?? {})) {
      for (const lfn of lfns) {
        if (!wanted.has(lfn)) continue;
        const holders = holdersOf.get(lfn);
        if (!holders) holdersOf.set(lfn, [site]);
        else if (holders[holders.length - 1] !== site) holders.push(site);
      }
    }
    for (const file of files) {
      const holders = holdersOf.get(file.lfn) ?? [];
      if (!dataset?.context.files[file.lfn] || holders.length === 0) {
        notProduced.push(file.lfn);
        continue;
      }
      for (const site of holders) {
        replicas[site] ??= new Set();
        replicas[site].add(file.lfn);
      }
    }
  }
  return {
    replicas: Object.fromEntries(Object.entries(replicas).map(([site, lfns]) => [site, [...lfns]])),
    notProduced,
  };
}

/** A stable number in [0, 1) per job: spreads equal jobs over the best sites, the same way on every run. */
function jobRandom(jobId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) hash = Math.imul(hash ^ jobId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 2 ** 32;
}

function leftOut(site: SiteSnapshot, filter: "excluded" | "requestedSite", reason: string): CandidateVerdict {
  return {
    site: site.name,
    excluded: [{ filter, reason }],
    components: {
      load: 0,
      assignedDamping: 0,
      locality: 0,
      failure: 0,
      pilotRate: 0,
      localBytes: 0,
      filesToMove: 0,
    },
  };
}

/** Site names in `localeCompare` order (the collator it uses, built once: comparing through it is much cheaper). */
const byName = new Intl.Collator().compare;

/**
 * Each site's place in name order, per list of snapshots (a cached read is
 * shared by every decision until it is refreshed), so that a decision's
 * candidates are put in name order by placing each at its index instead of
 * sorting. Null when the collator ties two names: then they are sorted.
 */
const nameRanks = new WeakMap<readonly SiteSnapshot[], Map<string, number> | null>();

function nameRanksOf(snapshots: readonly SiteSnapshot[]): Map<string, number> | null {
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
function inNameOrder(candidates: CandidateVerdict[], snapshots: readonly SiteSnapshot[]): CandidateVerdict[] {
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

/** The last read of every site, per grid, for `siteStatsTtlMs`. */
const statsCache = new WeakMap<WorkloadContext, { atMs: number; snapshots: readonly SiteSnapshot[] }>();

/**
 * What brokerage knows of every site. With `siteStatsTtlMs` > 0 a read is
 * reused for that long, as JEDI works from site statistics refreshed
 * periodically: on a grid of hundreds of sites, reading and summarising each
 * site for every job would cost more than the decision.
 */
async function siteSnapshots(ctx: WorkloadContext, nowMs: number): Promise<readonly SiteSnapshot[]> {
  const ttlMs = ctx.settings.siteStatsTtlMs;
  const cached = statsCache.get(ctx);
  if (ttlMs > 0 && cached && nowMs >= cached.atMs && nowMs - cached.atMs < ttlMs) return cached.snapshots;
  const sites = await listSites(ctx, { liveJobsMaxAgeMs: ctx.settings.liveJobsMaxAgeMs });
  // Frozen: every decision until the next read shares them (and brokerage checks the list once).
  const snapshots = Object.freeze(
    sites.map((site) => Object.freeze(siteSnapshotOf(site, ctx.connectedPilots(site.name), nowMs))),
  );
  if (ttlMs > 0) statsCache.set(ctx, { atMs: nowMs, snapshots });
  return snapshots;
}

/** Runs brokerage for one job over every site, recording why each site that was left out before scoring was. */
export async function decide(ctx: WorkloadContext, request: BrokerRequest, nowMs: number) {
  return decideAmong(ctx, request, nowMs, await siteSnapshots(ctx, nowMs));
}

/** `decide` over a given read of the sites (every decision between two reads shares it). */
export async function decideAmong(
  ctx: WorkloadContext,
  request: BrokerRequest,
  nowMs: number,
  snapshots: readonly SiteSnapshot[],
) {
  const locations = await locateInputs(ctx, request.inputs);
  const preExcluded: CandidateVerdict[] = [];
  const leavesOut = request.requestedSite !== null || request.excludedSites.length > 0;
  const candidates = !leavesOut
    ? (snapshots as SiteSnapshot[])
    : snapshots.filter((site) => {
        if (request.requestedSite && site.name !== request.requestedSite) {
          preExcluded.push(leftOut(site, "requestedSite", `the job asked for site ${request.requestedSite}`));
          return false;
        }
        if (request.excludedSites.includes(site.name)) {
          preExcluded.push(leftOut(site, "excluded", "an earlier attempt of this job failed here"));
          return false;
        }
        return true;
      });
  const needs: JobNeeds = {
    jobId: request.jobId,
    taskId: request.taskId,
    user: request.user,
    ...(request.group ? { group: request.group } : {}),
    type: request.type,
    priority: request.priority,
    cores: request.resources.cores,
    memoryMb: request.resources.memoryMb,
    diskMb: request.resources.diskMb,
    walltimeSec: request.resources.walltimeSec,
    ...(request.release ? { release: request.release } : {}),
    inputs: request.inputs.map((f) => ({ lfn: f.lfn, sizeBytes: f.sizeBytes })),
  };
  const decision: BrokerageDecision = broker({
    job: needs,
    sites: candidates,
    replicas: locations.replicas,
    nowMs,
    config: ctx.settings.brokerage,
    random: jobRandom(request.jobId),
  });
  decision.candidates.push(...preExcluded);
  decision.candidates = inNameOrder(decision.candidates, snapshots);
  return { decision, locations };
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
  const kept = [...chosen, ...best, ...excluded].slice(0, max).sort((a, b) => byName(a.site, b.site));
  return {
    ...decision,
    candidates: kept,
    ...(decision.draw ? { draw: drawOfKept(decision.draw, kept) } : {}),
    omittedCandidates: decision.candidates.length - kept.length,
  };
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

/** Best score first, then name order. */
function byScore(a: CandidateVerdict, b: CandidateVerdict): number {
  return (b.score ?? 0) - (a.score ?? 0) || byName(a.site, b.site);
}

/** Answers a job's `broker.request` with `brokered`: the chosen site, the files to stage there and from where. */
export function brokerageHandler(ctx: WorkloadContext) {
  return async (data: unknown, effect: EffectContext): Promise<void> => {
    const request = validate(brokerRequestSchema, data, "broker.request");
    const nowMs = ctx.runtime.clock.nowMs();
    const { decision, locations } = await decide(ctx, request, nowMs);
    const waiting = new Set(locations.notProduced);
    const filesToMove = decision.chosenSite
      ? request.inputs
          .filter((f) => decision.filesToMove.includes(f.lfn) && !waiting.has(f.lfn))
          .map((f) => {
            const sources = Object.keys(locations.replicas)
              .filter((site) => site !== decision.chosenSite && locations.replicas[site]?.includes(f.lfn))
              .sort();
            return { lfn: f.lfn, sizeBytes: f.sizeBytes, checksum: f.checksum, sourceSite: sources[0]! };
          })
      : [];
    await sendOnce(
      ctx,
      refs.job(request.jobId),
      {
        type: "brokered",
        site: decision.chosenSite,
        filesToMove,
        waitingFor: [...waiting],
        decision: trimDecision(decision, ctx.settings.maxRecordedCandidates),
        atMs: nowMs,
      },
      `${effect.effectId}:brokered`,
    );
  };
}
