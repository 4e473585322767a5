import { z } from "zod";
import type { JobInputFile } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import { broker } from "../brokerage/broker.js";
import type { BrokerageDecision, CandidateVerdict, JobNeeds, SiteSnapshot } from "../brokerage/types.js";
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
  for (const file of inputs) byDataset.set(file.dataset, [...(byDataset.get(file.dataset) ?? []), file]);
  for (const [name, files] of byDataset) {
    const dataset = await readContext(ctx, "dataset", name);
    const atSite = new Map<string, Set<string>>();
    for (const [site, lfns] of Object.entries(dataset?.context.replicas ?? {}))
      atSite.set(site, new Set(lfns));
    for (const file of files) {
      const holders = [...atSite].filter(([, lfns]) => lfns.has(file.lfn)).map(([site]) => site);
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

/** The last read of every site, per grid, for `siteStatsTtlMs`. */
const statsCache = new WeakMap<WorkloadContext, { atMs: number; snapshots: SiteSnapshot[] }>();

/**
 * What brokerage knows of every site. With `siteStatsTtlMs` > 0 a read is
 * reused for that long, as JEDI works from site statistics refreshed
 * periodically: on a grid of hundreds of sites, reading and summarising each
 * site for every job would cost more than the decision.
 */
async function siteSnapshots(ctx: WorkloadContext, nowMs: number): Promise<SiteSnapshot[]> {
  const ttlMs = ctx.settings.siteStatsTtlMs;
  const cached = statsCache.get(ctx);
  if (ttlMs > 0 && cached && nowMs >= cached.atMs && nowMs - cached.atMs < ttlMs) return cached.snapshots;
  const sites = await listSites(ctx, { liveJobsMaxAgeMs: ctx.settings.liveJobsMaxAgeMs });
  const snapshots = sites.map((site) => siteSnapshotOf(site, ctx.connectedPilots(site.name), nowMs));
  if (ttlMs > 0) statsCache.set(ctx, { atMs: nowMs, snapshots });
  return snapshots;
}

/** Runs brokerage for one job over every site, recording why each site that was left out before scoring was. */
export async function decide(ctx: WorkloadContext, request: BrokerRequest, nowMs: number) {
  const snapshots = await siteSnapshots(ctx, nowMs);
  const locations = await locateInputs(ctx, request.inputs);
  const preExcluded: CandidateVerdict[] = [];
  const candidates = snapshots.filter((site) => {
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
  decision.candidates.sort((a, b) => a.site.localeCompare(b.site));
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
  const scored = decision.candidates
    .filter((c) => c.site !== decision.chosenSite && c.score !== undefined)
    .sort((a, b) => (b.score ?? 0) - (a.score ?? 0) || a.site.localeCompare(b.site));
  const excluded = decision.candidates.filter((c) => c.site !== decision.chosenSite && c.score === undefined);
  const kept = [...chosen, ...scored, ...excluded].slice(0, max).sort((a, b) => a.site.localeCompare(b.site));
  return { ...decision, candidates: kept, omittedCandidates: decision.candidates.length - kept.length };
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
