/**
 * Sites as the workload reads them: created idempotently, listed, and each
 * one's actor state with its live jobs from the jobs' counters, with reads
 * shared between many callers because brokerage reads every site per job.
 */
import type { JobState } from "../actors/job/schema.js";
import { parseSiteJobsCounter, refs } from "../actors/shared/names.js";
import { siteListed } from "../actors/site/global-projections.js";
import type { SiteContext, SiteInput } from "../actors/site/schema.js";
import { isRuntimeError } from "../runtime/errors.js";
import { queueNames } from "../store/index-names.js";
import { readContext, type WorkloadContext } from "./context.js";
import { writeIndexEffect } from "./global-indexes.js";

/**
 * Creates the site actor if it is not there yet and lists it in the grid's
 * site index. Idempotent: a second call for the same site changes nothing.
 */
export async function ensureSite(ctx: WorkloadContext, input: SiteInput): Promise<void> {
  const existing = await readContext(ctx, "site", input.name);
  if (!existing) {
    await ctx.runtime
      .send(refs.site(input.name), { type: "create", input }, { eventId: `site-create:${input.name}` })
      .catch((err: unknown) => {
        // Another node created it between our read and our send: the site exists, which is all we wanted.
        if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
      });
  }
  // The create's commit carries this entry in its outbox; written here too (and for a site that exists) so
  // brokerage, reading the list next, sees the site.
  await writeIndexEffect(ctx.index, siteListed(input.name));
}

export async function siteNames(ctx: Pick<WorkloadContext, "index">): Promise<string[]> {
  return (await ctx.index.range(queueNames.sites(), 0, 100_000)).map((e) => e.member);
}

export type LiveJobs = Partial<Record<JobState, number>>;

/** A site as readers see it: its actor's state, and its live jobs per state from the jobs' counters. */
export interface SiteState extends SiteContext {
  jobs: LiveJobs;
}

/** The last read of the counters per runtime, and the read in flight: readers that accept some age share them. */
const countersRead = new WeakMap<
  WorkloadContext["runtime"],
  { atMs: number; read: Promise<Map<string, LiveJobs>> }
>();

/**
 * Live jobs per site and state, summed from every shard's counters (a read
 * per shard). `maxAgeMs` > 0 accepts a read that started at most that long
 * ago: brokerage decides many jobs a second and, like JEDI working from
 * periodically refreshed site statistics, needs loads, not the last job.
 */
export function liveJobsBySite(
  ctx: Pick<WorkloadContext, "runtime">,
  maxAgeMs = 0,
): Promise<Map<string, LiveJobs>> {
  const nowMs = ctx.runtime.clock.nowMs();
  const last = countersRead.get(ctx.runtime);
  if (maxAgeMs > 0 && last && nowMs >= last.atMs && nowMs - last.atMs <= maxAgeMs) return last.read;
  const read = readLiveJobs(ctx);
  countersRead.set(ctx.runtime, { atMs: nowMs, read });
  // A failed read is not reused.
  read.catch(() => {
    if (countersRead.get(ctx.runtime)?.read === read) countersRead.delete(ctx.runtime);
  });
  return read;
}

async function readLiveJobs(ctx: Pick<WorkloadContext, "runtime">): Promise<Map<string, LiveJobs>> {
  return liveJobsOf(await ctx.runtime.readCounters("jobs:"));
}

/** Live jobs per site and state from the `jobs:` counters. */
function liveJobsOf(counters: Map<string, number>): Map<string, LiveJobs> {
  const bySite = new Map<string, LiveJobs>();
  for (const [name, count] of counters) {
    const parsed = parseSiteJobsCounter(name);
    if (!parsed) continue;
    const jobs = bySite.get(parsed.site) ?? {};
    jobs[parsed.state as JobState] = count;
    bySite.set(parsed.site, jobs);
  }
  return bySite;
}

/** One site's state with its live jobs; null when there is no such site. */
export async function readSite(
  ctx: Pick<WorkloadContext, "runtime">,
  name: string,
): Promise<SiteState | null> {
  const [site, live] = await Promise.all([readContext(ctx, "site", name), liveJobsBySite(ctx)]);
  return site ? { ...site.context, jobs: live.get(name) ?? {} } : null;
}

async function readSites(ctx: WorkloadContext, liveJobsMaxAgeMs: number): Promise<SiteState[]> {
  const names = await siteNames(ctx);
  const [sites, live] = await Promise.all([
    // Brokerage weighs sites for every job: this node's committed copies, no decode of each site per read.
    Promise.all(names.map((name) => readContext(ctx, "site", name, { resident: true }))),
    liveJobsBySite(ctx, liveJobsMaxAgeMs),
  ]);
  return sites.flatMap((site) =>
    site ? [{ ...site.context, jobs: live.get(site.context.name) ?? {} }] : [],
  );
}

/** The read of every site that callers asking in the current microtask checkpoint will share. */
const nextRead = new WeakMap<WorkloadContext, Map<number, Promise<SiteState[]>>>();

/**
 * Every site's current state, read from its actor. Calls made together (a
 * commit's batch of `broker.request` effects: one per job) share one read,
 * which starts after the last of them asked, so each still sees state read
 * after its call; without this each job read and decoded every site.
 */
export function listSites(
  ctx: WorkloadContext,
  options: { liveJobsMaxAgeMs?: number } = {},
): Promise<SiteState[]> {
  const liveJobsMaxAgeMs = options.liveJobsMaxAgeMs ?? 0;
  const reads = nextRead.get(ctx) ?? new Map<number, Promise<SiteState[]>>();
  nextRead.set(ctx, reads);
  let read = reads.get(liveJobsMaxAgeMs);
  if (!read) {
    read = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
      reads.delete(liveJobsMaxAgeMs);
      return readSites(ctx, liveJobsMaxAgeMs);
    });
    reads.set(liveJobsMaxAgeMs, read);
  }
  return read.then((sites) => [...sites]);
}
