/**
 * What a job's state puts in its shard's indexes and counters (see
 * `KindProjections`): its site's queue while activated, its site's list of
 * jobs waiting for their inputs while assigned, its pilot's list
 * while sent to it and running, its user's throttled list while throttled;
 * one count among its site's live jobs in its state, one against its
 * user's quota from activation to its end, and one among its share's
 * running slots at its site while on a pilot. Written with the job's own
 * commits, so none of them can disagree with the job.
 */

import { DEFAULT_SHARE } from "../../brokerage/shares.js";
import type { MachineState } from "../../runtime/compiled-machine.js";
import type { KindProjections, Projection } from "../../runtime/kinds.js";
import { queueNames } from "../../store/queue-index.js";
import { siteJobsCounter } from "../shared/names.js";
import { isJobOutcome } from "../shared/schemas.js";
import type { JobContext, JobState } from "./schema.js";
import { jobStateOf } from "./state.js";

export type Lane = "production" | "analysis";

/** Analysis work has its own lane, so short jobs can be found without scanning production. */
export function laneOf(type: JobContext["type"]): Lane {
  return type === "analysis" ? "analysis" : "production";
}

const SECONDS_PER_PRIORITY = 2 ** 32;

/**
 * Higher priority first, then older first. Priority is an integer and times
 * are whole seconds, so both fit exactly in one double.
 */
export function queueScore(priority: number, activatedAtMs: number): number {
  return -priority * SECONDS_PER_PRIORITY + Math.floor(activatedAtMs / 1000);
}

/** The activation seconds of a `queueScore`: what is left after the priority's multiple of 2^32. */
export function queuedSecOf(score: number): number {
  return ((score % SECONDS_PER_PRIORITY) + SECONDS_PER_PRIORITY) % SECONDS_PER_PRIORITY;
}

/** The lowest `queueScore` of the next lower priority than a score's: where that priority's oldest job is. */
export function nextPriorityScore(score: number): number {
  return (Math.floor(score / SECONDS_PER_PRIORITY) + 1) * SECONDS_PER_PRIORITY;
}

/** The whole seconds a job's current stay in `activated` or `assigned` began at: its place in the index. */
export function waitingSinceSec(context: JobContext, state: "activated" | "assigned"): number {
  return Math.floor((context.timestamps[state] ?? context.lastAtMs ?? 0) / 1000);
}

export const THREAD_SCORE = { primary: 0, secondary: 1 } as const;

/** States that count against the user's quota: admitted to the queue, not yet ended. */
const ACTIVE: ReadonlySet<JobState> = new Set([
  "activated",
  "sent",
  "starting",
  "running",
  "holding",
  "transferring",
]);
/** States in which the job's pilot holds it: what a share's running slots count. */
export const ON_PILOT_STATES = ["sent", "starting", "running"] as const satisfies readonly JobState[];
const ON_PILOT: ReadonlySet<JobState> = new Set(ON_PILOT_STATES);

/** When the job was last activated: its place in the site's queue (and in its user's throttled list). */
function activatedAtMs(context: JobContext): number {
  return context.timestamps.activated ?? context.lastAtMs ?? 0;
}

/** The fair share a job draws on: `default` for a job made before shares. */
export function shareOfJob(context: JobContext): string {
  return context.share ?? DEFAULT_SHARE;
}

export const jobProjections: KindProjections = {
  // 2: assigned jobs are listed per site (`siteAssigned`), for the sweep of stale waits.
  // 3: a site's queues are split by fair share, scored by current priority; running slots counted per share.
  // 4: the default share's running slots are no longer counted (they are the site's on-pilot jobs less the named shares').
  version: 4,
  counterPrefixes: ["jobs:", "users:", "shares:"],
  of(state: MachineState): Projection {
    const context = state.context as JobContext;
    const jobState = jobStateOf(state);
    const projection: Projection = { index: [], counters: [] };
    if (context.site && !isJobOutcome(jobState)) {
      projection.counters.push({ name: siteJobsCounter(context.site, jobState), value: 1 });
    }
    if (ACTIVE.has(jobState))
      projection.counters.push({ name: queueNames.userActive(context.user), value: 1 });
    if (jobState === "throttled") {
      projection.counters.push({ name: queueNames.userThrottledCount(context.user), value: 1 });
    }
    if (jobState === "activated" && context.site) {
      projection.index.push({
        key: queueNames.siteQueue(context.site, laneOf(context.type), shareOfJob(context)),
        member: context.jobId,
        score: queueScore(context.currentPriority ?? context.priority, activatedAtMs(context)),
      });
    } else if (jobState === "assigned" && context.site) {
      projection.index.push({
        key: queueNames.siteAssigned(context.site),
        member: context.jobId,
        score: waitingSinceSec(context, "assigned"),
      });
    } else if (jobState === "throttled") {
      projection.index.push({
        key: queueNames.userThrottled(context.user),
        member: context.jobId,
        score: queueScore(0, activatedAtMs(context)),
      });
    } else if (ON_PILOT.has(jobState) && context.pilot) {
      // The default share is counted by difference (`shareRunningCounts`): a grid without shares pays nothing.
      if (context.site && shareOfJob(context) !== DEFAULT_SHARE)
        projection.counters.push({
          name: queueNames.shareRunning(context.site, shareOfJob(context)),
          value: 1,
        });
      projection.index.push({
        key: queueNames.pilotJobs(context.pilot.pilotId),
        member: context.jobId,
        score: THREAD_SCORE[context.pilot.thread],
      });
    }
    return projection;
  },
};

/**
 * The running slots of `share` at `site`, from the counters these
 * projections write: a named share's own counter; the default share's by
 * difference, the site's jobs on pilots less those of the `named` shares
 * (so a grid without shares writes no share counter at all).
 */
export function shareRunningFrom(
  counter: (name: string) => number,
  site: string,
  share: string,
  named: Iterable<string>,
): number {
  if (share !== DEFAULT_SHARE) return counter(queueNames.shareRunning(site, share));
  let running = 0;
  for (const state of ON_PILOT_STATES) running += counter(siteJobsCounter(site, state));
  for (const other of named)
    if (other !== DEFAULT_SHARE) running -= counter(queueNames.shareRunning(site, other));
  return Math.max(0, running);
}
