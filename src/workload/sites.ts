import type { JobState } from "../actors/job/schema.js";
import { parseSiteJobsCounter, refs } from "../actors/shared/names.js";
import type { SiteContext, SiteInput } from "../actors/site/schema.js";
import { isRuntimeError } from "../runtime/errors.js";
import { queueNames } from "../store/queue-index.js";
import { readContext, type WorkloadContext } from "./context.js";

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
  await ctx.index.add(queueNames.sites(), input.name, 0);
}

export async function siteNames(ctx: Pick<WorkloadContext, "index">): Promise<string[]> {
  return (await ctx.index.range(queueNames.sites(), 0, 100_000)).map((e) => e.member);
}

export type LiveJobs = Partial<Record<JobState, number>>;

/** A site as readers see it: its actor's state, and its live jobs per state from the jobs' counters. */
export interface SiteState extends SiteContext {
  jobs: LiveJobs;
}

/** Live jobs per site and state, summed from every shard's counters. */
export async function liveJobsBySite(ctx: Pick<WorkloadContext, "runtime">): Promise<Map<string, LiveJobs>> {
  const bySite = new Map<string, LiveJobs>();
  for (const [name, count] of await ctx.runtime.readCounters("jobs:")) {
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

async function readSites(ctx: WorkloadContext): Promise<SiteState[]> {
  const names = await siteNames(ctx);
  const [sites, live] = await Promise.all([
    Promise.all(names.map((name) => readContext(ctx, "site", name))),
    liveJobsBySite(ctx),
  ]);
  return sites.flatMap((site) =>
    site ? [{ ...site.context, jobs: live.get(site.context.name) ?? {} }] : [],
  );
}

/** The read of every site that callers asking in the current microtask checkpoint will share. */
const nextRead = new WeakMap<WorkloadContext, Promise<SiteState[]>>();

/**
 * Every site's current state, read from its actor. Calls made together (a
 * commit's batch of `broker.request` effects: one per job) share one read,
 * which starts after the last of them asked, so each still sees state read
 * after its call; without this each job read and decoded every site.
 */
export function listSites(ctx: WorkloadContext): Promise<SiteState[]> {
  let read = nextRead.get(ctx);
  if (!read) {
    read = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
      nextRead.delete(ctx);
      return readSites(ctx);
    });
    nextRead.set(ctx, read);
  }
  return read.then((sites) => [...sites]);
}
