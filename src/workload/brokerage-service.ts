/**
 * Brokerage as the grid runs it: a job's `broker.request` answered with
 * `brokered`, inline in the commit that asks when everything it reads is in
 * memory, else after it. Locates the job's inputs, decides over the sites
 * (the fast path's shared rankings, or every site weighed), and builds the
 * event with the files to stage and the user's priority. The choice itself
 * is `src/brokerage`'s; this module feeds it and records its answer.
 */
import { z } from "zod";
import type { JobInputFile } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import { broker } from "../brokerage/broker.js";
import { userPriority } from "../brokerage/shares.js";
import type { BrokerageDecision, CandidateVerdict, JobNeeds, SiteSnapshot } from "../brokerage/types.js";
import { validate } from "../protocol/codec.js";
import type { EffectContext } from "../runtime/runtime.js";
import type { InlineEffectHandler } from "../runtime/shard-host.js";
import { queueNames } from "../store/queue-index.js";
import { decideRecorded, type RecordedDecisionInput } from "./brokerage-fast-path.js";
import { type ContextByKind, readContext, sendOnce, type WorkloadContext } from "./context.js";
import {
  inNameOrder,
  leftOutAsFailedBefore,
  leftOutAsNotRequested,
  nameRanksOf,
  trimDecision,
} from "./decision-record.js";
import { freshSnapshots, siteSnapshots, snapshotsInMemory } from "./site-stats-cache.js";

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
  isTest: z.boolean().optional(),
});
export type BrokerRequest = z.infer<typeof brokerRequestSchema>;

/** Where the job's inputs are: complete lfns per site, and the lfns no dataset holds yet. */
interface InputLocations {
  replicas: Record<string, string[]>;
  notProduced: string[];
}

type DatasetContext = ContextByKind["dataset"];

/** The job's inputs per dataset they belong to. */
function byDataset(inputs: readonly JobInputFile[]): Map<string, JobInputFile[]> {
  const grouped = new Map<string, JobInputFile[]>();
  for (const file of inputs) {
    const files = grouped.get(file.dataset);
    if (files) files.push(file);
    else grouped.set(file.dataset, [file]);
  }
  return grouped;
}

/** Where the inputs are, given each of their datasets' state (undefined: no such dataset). */
function locate(
  grouped: Map<string, JobInputFile[]>,
  datasetOf: (name: string) => DatasetContext | undefined,
): InputLocations {
  const replicas: Record<string, Set<string>> = {};
  const notProduced: string[] = [];
  for (const [name, files] of grouped) {
    const dataset = datasetOf(name);
    // The sites holding each wanted file, in the dataset's site order: one pass over its replica lists
    // instead of a set per site of every file (a task's dataset has hundreds of files, a job reads few).
    const wanted = new Set(files.map((f) => f.lfn));
    const holdersOf = new Map<string, string[]>();
    for (const [site, lfns] of Object.entries(dataset?.replicas ?? {})) {
      for (const lfn of lfns) {
        if (!wanted.has(lfn)) continue;
        const holders = holdersOf.get(lfn);
        if (!holders) holdersOf.set(lfn, [site]);
        else if (holders[holders.length - 1] !== site) holders.push(site);
      }
    }
    for (const file of files) {
      const holders = holdersOf.get(file.lfn) ?? [];
      if (!dataset?.files[file.lfn] || holders.length === 0) {
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

/** Where the job's inputs are, from their datasets' states (this node's copies where it holds them). */
export async function locateInputs(ctx: WorkloadContext, inputs: JobInputFile[]): Promise<InputLocations> {
  const grouped = byDataset(inputs);
  const datasets = new Map<string, DatasetContext | undefined>();
  for (const name of grouped.keys()) {
    datasets.set(name, (await readContext(ctx, "dataset", name, { resident: true }))?.context);
  }
  return locate(grouped, (name) => datasets.get(name));
}

/**
 * `locateInputs` from this node's memory alone: null when a dataset the job
 * reads is not resident here (its state would take a read).
 */
function locateResidentInputs(ctx: WorkloadContext, inputs: JobInputFile[]): InputLocations | null {
  if (inputs.length === 0) return { replicas: {}, notProduced: [] };
  const grouped = byDataset(inputs);
  const datasets = new Map<string, DatasetContext>();
  for (const name of grouped.keys()) {
    const state = ctx.runtime.residentState(refs.dataset(name));
    if (!state) return null;
    datasets.set(name, state.context as DatasetContext);
  }
  return locate(grouped, (name) => datasets.get(name));
}

/** A stable number in [0, 1) per job: spreads equal jobs over the best sites, the same way on every run. */
function jobRandom(jobId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) hash = Math.imul(hash ^ jobId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 2 ** 32;
}

/** Runs brokerage for one job over every site (see `decideAmong`). */
export async function decide(ctx: WorkloadContext, request: BrokerRequest, nowMs: number) {
  const snapshots = await siteSnapshots(ctx, nowMs);
  const locations = await locateInputs(ctx, request.inputs);
  return { decision: decideAmong(ctx, request, nowMs, snapshots, locations), locations };
}

/**
 * The decision for one job over a given read of the sites (every decision
 * between two reads shares it) and its inputs' locations, as the job's
 * history records it: trimmed to `maxRecordedCandidates`.
 */
export function decideAmong(
  ctx: WorkloadContext,
  request: BrokerRequest,
  nowMs: number,
  snapshots: readonly SiteSnapshot[],
  locations: InputLocations,
): BrokerageDecision {
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
  return usesFastPath(ctx, request, snapshots)
    ? decideRecorded({ ...input, maxRecorded: max! })
    : trimDecision(decideOverEverySite({ ...input, requestedSite: request.requestedSite }), max);
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
    ...(request.isTest ? { isTest: true } : {}),
  };
}

/**
 * The job's `brokered` event for a decision: the chosen site, the files to
 * stage there and from where, and the job's current priority by the user's
 * rule, from its user's active jobs as this node's shards count them (the
 * quota's count: one lookup, no read).
 */
function brokeredEvent(
  ctx: WorkloadContext,
  request: BrokerRequest,
  decision: BrokerageDecision,
  locations: InputLocations,
  nowMs: number,
) {
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
  const priority = userPriority(
    request.priority,
    request.type,
    ctx.runtime.local.counter(queueNames.userActive(request.user)),
    ctx.settings.fairShare.jobsPerPriorityStep,
  );
  return {
    type: "brokered",
    site: decision.chosenSite,
    filesToMove,
    waitingFor: [...waiting],
    decision,
    // Only when the rule lowers it: the event is kept in the job's history.
    ...(priority !== request.priority ? { priority } : {}),
    atMs: nowMs,
  };
}

/**
 * Answers a job's `broker.request` with `brokered`, after the commit that
 * asked (the durable path: the request waits in the outbox). Reads the sites
 * when the cached read is stale, which lets the requests after it be
 * answered inline.
 */
export function brokerageHandler(ctx: WorkloadContext) {
  return async (data: unknown, effect: EffectContext): Promise<void> => {
    const request = validate(brokerRequestSchema, data, "broker.request");
    const nowMs = ctx.runtime.clock.nowMs();
    const { decision, locations } = await decide(ctx, request, nowMs);
    await sendOnce(
      ctx,
      refs.job(request.jobId),
      brokeredEvent(ctx, request, decision, locations, nowMs),
      `${effect.effectId}:brokered`,
    );
  };
}

/**
 * Answers a job's `broker.request` inline, in the commit that asks: when the
 * read of the sites is fresh (younger than `siteStatsTtlMs`) or can be made
 * from memory, and the datasets of the job's inputs are in this node's
 * memory, the decision needs no I/O, and the job's creation, its brokerage
 * and what follows from it (its activation, its binding to a waiting pilot)
 * commit as one record. Else the request takes the durable path. The
 * request was built by the job's own machine in this process: trusted.
 */
export function brokerageInline(ctx: WorkloadContext): InlineEffectHandler {
  return (data, { nowMs }) => {
    const snapshots = freshSnapshots(ctx, nowMs) ?? snapshotsInMemory(ctx, nowMs);
    if (!snapshots) return { handled: false };
    const request = data as BrokerRequest;
    const locations = locateResidentInputs(ctx, request.inputs);
    if (!locations) return { handled: false };
    const decision = decideAmong(ctx, request, nowMs, snapshots, locations);
    return { handled: true, events: [brokeredEvent(ctx, request, decision, locations, nowMs)] };
  };
}
