import { z } from "zod";
import type { JobInputFile } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import { broker } from "../brokerage/broker.js";
import type { BrokerageDecision, CandidateVerdict, JobNeeds, SiteSnapshot } from "../brokerage/types.js";
import { validate } from "../protocol/codec.js";
import type { EffectContext } from "../runtime/runtime.js";
import { decideRecorded, type RecordedDecisionInput } from "./brokerage-fast-path.js";
import { readContext, sendOnce, type WorkloadContext } from "./context.js";
import {
  inNameOrder,
  leftOutAsFailedBefore,
  leftOutAsNotRequested,
  nameRanksOf,
  trimDecision,
} from "./decision-record.js";
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
export type BrokerRequest = z.infer<typeof brokerRequestSchema>;

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

/** Runs brokerage for one job over every site (see `decideAmong`). */
export async function decide(ctx: WorkloadContext, request: BrokerRequest, nowMs: number) {
  return decideAmong(ctx, request, nowMs, await siteSnapshots(ctx, nowMs));
}

/**
 * `decide` over a given read of the sites (every decision between two reads
 * shares it): the decision as the job's history records it, trimmed to
 * `maxRecordedCandidates`.
 */
export async function decideAmong(
  ctx: WorkloadContext,
  request: BrokerRequest,
  nowMs: number,
  snapshots: readonly SiteSnapshot[],
) {
  const locations = await locateInputs(ctx, request.inputs);
  const input = {
    job: jobNeedsOf(request),
    sites: snapshots,
    replicas: locations.replicas,
    excludedSites: request.excludedSites,
    nowMs,
    config: ctx.settings.brokerage,
    random: jobRandom(request.jobId),
  };
  const max = ctx.settings.maxRecordedCandidates;
  const decision = usesFastPath(ctx, request, snapshots)
    ? decideRecorded({ ...input, maxRecorded: max! })
    : trimDecision(decideOverEverySite({ ...input, requestedSite: request.requestedSite }), max);
  return { decision, locations };
}

/**
 * Whether the decision can come from rankings shared by the decisions on one
 * read of the sites: when the read is kept for a while, the record is
 * trimmed (a record of every site costs as much as weighing them) and the
 * job did not ask for one site.
 */
export function usesFastPath(
  ctx: WorkloadContext,
  request: BrokerRequest,
  snapshots: readonly SiteSnapshot[],
): boolean {
  const max = ctx.settings.maxRecordedCandidates;
  return (
    ctx.settings.siteStatsTtlMs > 0 &&
    max !== null &&
    snapshots.length > max &&
    request.requestedSite === null &&
    Object.isFrozen(snapshots) &&
    nameRanksOf(snapshots) !== null
  );
}

/** What the decision over every site reads: the fast path's input, and the one site the job may ask for. */
export type EverySiteInput = Omit<RecordedDecisionInput, "maxRecorded"> & { requestedSite: string | null };

/** Brokerage over every site, those left out before scoring recorded with why: the decision untrimmed. */
export function decideOverEverySite(input: EverySiteInput): BrokerageDecision {
  const { requestedSite, excludedSites, sites } = input;
  const preExcluded: CandidateVerdict[] = [];
  const leavesOut = requestedSite !== null || excludedSites.length > 0;
  const candidates = !leavesOut
    ? (sites as SiteSnapshot[])
    : sites.filter((site) => {
        if (requestedSite && site.name !== requestedSite) {
          preExcluded.push(leftOutAsNotRequested(site.name, requestedSite));
          return false;
        }
        if (excludedSites.includes(site.name)) {
          preExcluded.push(leftOutAsFailedBefore(site.name));
          return false;
        }
        return true;
      });
  const decision = broker({
    job: input.job,
    sites: candidates,
    replicas: input.replicas as Record<string, string[]>,
    nowMs: input.nowMs,
    config: input.config,
    random: input.random,
  });
  decision.candidates.push(...preExcluded);
  decision.candidates = inNameOrder(decision.candidates, sites);
  return decision;
}

function jobNeedsOf(request: BrokerRequest): JobNeeds {
  return {
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
        decision,
        atMs: nowMs,
      },
      `${effect.effectId}:brokered`,
    );
  };
}
