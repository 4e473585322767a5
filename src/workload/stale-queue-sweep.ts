/**
 * The sweep of stale waits: a job that waits `activated` or `assigned` at a
 * site longer than the site's `thresholds.reassignAfterMs` is reassigned
 * (docs/workload.md). Nothing is armed per job: where a job waits and since
 * when is already in its shard's indexes, written with its commits (the
 * site's queue, scored by priority and activation second; the site's
 * assigned list, scored by assigned second), and this node mirrors the
 * indexes of the shards it owns (`Runtime.local`). So each sweep reads
 * memory only, and only the head of each index: oldest first within each
 * priority, a scan stops at the first job within its limit and skips to the
 * next priority (O(sites x priorities x log of the queue), not O(jobs
 * waiting): a late hour of a whole grid's simulation spent 4-5% of its CPU
 * walking every waiting job each minute). It sends a `reassign` to each job
 * found stale. Derived from committed indexes, it is as durable
 * as they are: the shards of a node that crashed are swept by their next
 * owner, and the event's id, fixed by the job and the second its stay began,
 * makes a repeat a duplicate.
 */
import { nextPriorityScore, queuedSecOf } from "../actors/job/projections.js";
import { DEFAULT_REASSIGN_AFTER_MS, type JobEvent } from "../actors/job/schema.js";
import { queueNames } from "../store/index-names.js";
import { readContext, type WorkloadContext } from "./context.js";
import { sendReassigns } from "./reassign.js";

type Waiting = "activated" | "assigned";

/** One kind of waiting index: its names' prefix, the site a name is of, and when a member's stay began. */
interface WaitingIndex {
  state: Waiting;
  prefix: string;
  siteOf: (key: string) => string | null;
  sinceSec: (score: number) => number;
  /** Past a member still within its limit: the score the next stale candidate may have, or false for none. */
  skipFrom: (score: number) => number | false;
}

const WAITING: readonly WaitingIndex[] = [
  {
    state: "activated",
    prefix: "site-queue:",
    // Every lane and share: a share since dropped from the configuration still has its jobs swept.
    siteOf: (key) => queueNames.siteQueueParts(key)?.site ?? null,
    sinceSec: queuedSecOf,
    // Oldest first within a priority: the rest of this one is younger still.
    skipFrom: nextPriorityScore,
  },
  {
    state: "assigned",
    prefix: queueNames.siteAssigned(""),
    siteOf: (key) => siteOfKey(key, queueNames.siteAssigned),
    sinceSec: (score) => score,
    // Scored by the second alone: everything after is younger.
    skipFrom: () => false,
  },
];

export interface StaleWait {
  jobId: string;
  site: string;
  state: Waiting;
  sinceSec: number;
  limitMs: number;
}

const MARK = "\u0000";

/** The site a key of `build`'s names, or null for a key of another kind. */
function siteOfKey(key: string, build: (site: string) => string): string | null {
  const [head = "", tail = ""] = build(MARK).split(MARK);
  if (key.length <= head.length + tail.length || !key.startsWith(head) || !key.endsWith(tail)) return null;
  return key.slice(head.length, key.length - tail.length);
}

/**
 * A site's limit on a job waiting there: its actor's committed copy on this
 * node when it holds one (a read of the site otherwise, once per sweep).
 */
async function limitOf(ctx: WorkloadContext, site: string): Promise<number> {
  const read = await readContext(ctx, "site", site, { resident: true });
  return read?.context.thresholds.reassignAfterMs ?? DEFAULT_REASSIGN_AFTER_MS;
}

/** Every job of this node's shards that has waited at its site longer than the site allows. */
export async function findStaleWaits(ctx: WorkloadContext, nowMs: number): Promise<StaleWait[]> {
  const mirror = ctx.runtime.local;
  const limits = new Map<string, Promise<number>>();
  const stale: StaleWait[] = [];
  for (const waiting of WAITING) {
    for (const key of mirror.keys(waiting.prefix)) {
      const site = waiting.siteOf(key);
      if (site === null) continue;
      let limit = limits.get(site);
      if (!limit) {
        limit = limitOf(ctx, site);
        limits.set(site, limit);
      }
      const limitMs = await limit;
      mirror.scan(key, (jobId, score) => {
        const sinceSec = waiting.sinceSec(score);
        // The stay began within its second: judged from the second's end, a job is never reassigned early.
        if (nowMs - (sinceSec + 1) * 1000 < limitMs) return waiting.skipFrom(score);
        stale.push({ jobId, site, state: waiting.state, sinceSec, limitMs });
        return true;
      });
    }
  }
  return stale;
}

function reassignEvent(wait: StaleWait, atMs: number): JobEvent {
  return {
    type: "reassign",
    by: "auto",
    reason: `waited ${wait.state} at ${wait.site} longer than its limit of ${wait.limitMs} ms`,
    site: null,
    waited: { state: wait.state, sinceSec: wait.sinceSec },
    atMs,
  };
}

/**
 * One sweep: reassigns every stale wait found. A job that left its stay
 * meanwhile refuses the event; one reassigned already drops it as a
 * duplicate. Answers how many jobs took it.
 */
export async function sweepStaleWaits(ctx: WorkloadContext): Promise<number> {
  const nowMs = ctx.runtime.clock.nowMs();
  const stale = await findStaleWaits(ctx, nowMs);
  const took = await sendReassigns(
    ctx,
    stale.map((wait) => ({
      jobId: wait.jobId,
      event: reassignEvent(wait, nowMs),
      eventId: `reassign:auto:${wait.jobId}:${wait.sinceSec}`,
    })),
  );
  const reassigned = took.filter(Boolean).length;
  if (stale.length > 0) ctx.log.info({ stale: stale.length, reassigned }, "stale waits reassigned");
  return reassigned;
}
