/**
 * A site's job statistics: outcome totals, the failure window by buckets, black-hole verdicts, pilot
 * requests.
 */
import { appendBounded } from "../shared/bounded.js";
import { type ErrorClass, isJobOutcome, isSiteFailure } from "../shared/schemas.js";
import { countHour } from "./hourly.js";
import type {
  JobStateEvent,
  OutcomeBucket,
  PilotRequestBucket,
  RecentOutcome,
  SiteContext,
  SiteIncident,
} from "./schema.js";

type JobStats = Pick<SiteContext, "totals" | "outcomes" | "consecutiveSuccesses" | "hours">;

/** Outcome buckets per failure window: the window's counts stay exact to a twelfth of it, in constant space. */
const BUCKETS_PER_WINDOW = 12;

export function outcomeBucketMs(windowMs: number): number {
  return Math.max(1, Math.floor(windowMs / BUCKETS_PER_WINDOW));
}

/** Buckets starting after this have not left the window ending at `nowMs`. */
function windowHorizonMs(nowMs: number, windowMs: number): number {
  return nowMs - windowMs - outcomeBucketMs(windowMs);
}

/** Buckets that still overlap the window ending at `nowMs`. */
function bucketsInWindow(buckets: OutcomeBucket[], nowMs: number, windowMs: number): OutcomeBucket[] {
  const horizon = windowHorizonMs(nowMs, windowMs);
  return buckets.filter((b) => b.startMs > horizon);
}

/** The buckets after counting one outcome at `nowMs`; buckets that left the window are dropped. */
export function countOutcome(
  buckets: OutcomeBucket[],
  outcome: RecentOutcome,
  windowMs: number,
): OutcomeBucket[] {
  const widthMs = outcomeBucketMs(windowMs);
  const startMs = outcome.atMs - (outcome.atMs % widthMs);
  const kept = bucketsInWindow(buckets, outcome.atMs, windowMs);
  const last = kept.at(-1);
  // A report older than the newest bucket (clocks of two nodes differ a little) counts in the newest.
  const joinsLast = last !== undefined && last.startMs >= startMs;
  const bucket: OutcomeBucket = joinsLast
    ? { ...last, errorClasses: { ...last.errorClasses } }
    : { startMs, finished: 0, failed: 0, closed: 0, errorClasses: {} };
  bucket[outcome.outcome] += 1;
  if (outcome.outcome === "failed" && outcome.errorClass)
    bucket.errorClasses[outcome.errorClass] = (bucket.errorClasses[outcome.errorClass] ?? 0) + 1;
  return joinsLast ? [...kept.slice(0, -1), bucket] : [...kept, bucket];
}

/**
 * The site's job statistics after one `job.state` report. Jobs report only
 * their final state here (live jobs per state are counters committed with
 * the jobs' own transitions); a report of a live state, from a job of an
 * older version, changes nothing.
 */
export function recordJobState(context: SiteContext, event: JobStateEvent, nowMs: number): JobStats {
  if (!isJobOutcome(event.to)) return context;
  const totals = { ...context.totals, [event.to]: context.totals[event.to] + 1 };
  // The monitor's hourly record counts every ended job; what the site is judged on is below.
  const hours = countHour(context.hours, event, nowMs);
  // A user's kill or a reassignment says nothing about the site; a failure, a success or a system close does.
  if (event.to === "cancelled" || event.reassigned) return { ...context, totals, hours };
  const outcomes = countOutcome(
    context.outcomes,
    { atMs: nowMs, outcome: event.to, errorClass: event.errorClass ?? null },
    context.thresholds.failureWindowMs,
  );
  // Only a failure the site is to blame for breaks a run of successes: a user's bad payload says nothing of it.
  const consecutiveSuccesses =
    event.to === "finished"
      ? context.consecutiveSuccesses + 1
      : event.to === "failed" && isSiteFailure(event.errorClass)
        ? 0
        : context.consecutiveSuccesses;
  return { totals, outcomes, consecutiveSuccesses, hours };
}

/**
 * The site's record in a window, as black-hole detection judges it: `jobs`
 * are the finished ones and those that failed by the site's fault, `failed`
 * the latter. Failures that are the user's (`userFailed`: payload errors,
 * walltime overruns) are in neither; `errorClasses` lists every failure.
 */
export interface FailureSummary {
  jobs: number;
  failed: number;
  failureFraction: number;
  userFailed: number;
  errorClasses: Partial<Record<ErrorClass, number>>;
}

/** Every outcome in a window; `failed` counts every failure, `siteFailed` those the site is to blame for. */
export interface OutcomeCounts {
  finished: number;
  failed: number;
  siteFailed: number;
  closed: number;
  errorClasses: Partial<Record<ErrorClass, number>>;
}

/** Every outcome in the window ending at `nowMs`, to the resolution of one bucket. */
export function outcomeCounts(buckets: OutcomeBucket[], nowMs: number, windowMs: number): OutcomeCounts {
  const errorClasses: Partial<Record<ErrorClass, number>> = {};
  let finished = 0;
  let failed = 0;
  let siteFailed = 0;
  let closed = 0;
  // Brokerage reads every site's counts at each refresh: plain loops, no arrays built per bucket.
  const horizon = windowHorizonMs(nowMs, windowMs);
  for (const bucket of buckets) {
    if (bucket.startMs <= horizon) continue;
    finished += bucket.finished;
    failed += bucket.failed;
    closed += bucket.closed;
    // Failures reported without a class are the site's, as they were counted before classes existed.
    let classified = 0;
    const byClass = bucket.errorClasses;
    for (const errorClass in byClass) {
      if (!Object.hasOwn(byClass, errorClass)) continue;
      const n = byClass[errorClass as ErrorClass]!;
      errorClasses[errorClass as ErrorClass] = (errorClasses[errorClass as ErrorClass] ?? 0) + n;
      classified += n;
      if (isSiteFailure(errorClass as ErrorClass)) siteFailed += n;
    }
    siteFailed += bucket.failed - classified;
  }
  return { finished, failed, siteFailed, closed, errorClasses };
}

/**
 * When `outcomeCounts` next changes with no outcome counted meanwhile: the
 * time its oldest counted bucket leaves the window (Infinity for none).
 */
export function outcomeCountsChangeAtMs(buckets: OutcomeBucket[], nowMs: number, windowMs: number): number {
  const horizon = windowHorizonMs(nowMs, windowMs);
  const leavesAfterMs = windowMs + outcomeBucketMs(windowMs);
  let atMs = Number.POSITIVE_INFINITY;
  for (const bucket of buckets)
    if (bucket.startMs > horizon) atMs = Math.min(atMs, bucket.startMs + leavesAfterMs);
  return atMs;
}

/** The site's finished jobs and its own failures in the window ending at `nowMs`. */
export function failureSummary(buckets: OutcomeBucket[], nowMs: number, windowMs: number): FailureSummary {
  const { finished, failed, siteFailed, errorClasses } = outcomeCounts(buckets, nowMs, windowMs);
  // Closed jobs are the system's doing and a user's failure the user's: neither is a job the site ran badly or well.
  const jobs = finished + siteFailed;
  return {
    jobs,
    failed: siteFailed,
    failureFraction: jobs === 0 ? 0 : siteFailed / jobs,
    userFailed: failed - siteFailed,
    errorClasses,
  };
}

export function isBlackHole(context: Pick<SiteContext, "outcomes" | "thresholds">, nowMs: number): boolean {
  const { blackHoleMinJobs, blackHoleFailureFraction, failureWindowMs } = context.thresholds;
  const summary = failureSummary(context.outcomes, nowMs, failureWindowMs);
  return summary.jobs >= blackHoleMinJobs && summary.failureFraction >= blackHoleFailureFraction;
}

export function openIncident(context: SiteContext, nowMs: number | null): SiteIncident[] {
  const summary = failureSummary(context.outcomes, nowMs ?? 0, context.thresholds.failureWindowMs);
  const incident: SiteIncident = { openedAtMs: nowMs, closedAtMs: null, closedBy: null, ...summary };
  return appendBounded(context.incidents, incident, context.thresholds.maxIncidents);
}

export function hasOpenIncident(context: Pick<SiteContext, "incidents">): boolean {
  const last = context.incidents.at(-1);
  return last !== undefined && last.closedBy === null;
}

export function closeIncident(context: SiteContext, nowMs: number | null, by: string): SiteIncident[] {
  if (!hasOpenIncident(context)) return context.incidents;
  const last = context.incidents.at(-1)!;
  return [...context.incidents.slice(0, -1), { ...last, closedAtMs: nowMs, closedBy: by }];
}

function bucketMs(windowMs: number): number {
  return Math.max(1, Math.floor(windowMs / 10));
}

export function recordPilotRequest(
  buckets: PilotRequestBucket[],
  nowMs: number,
  windowMs: number,
  requests = 1,
): PilotRequestBucket[] {
  const startMs = nowMs - (nowMs % bucketMs(windowMs));
  const recent = buckets.filter((b) => b.startMs > nowMs - windowMs);
  const last = recent.at(-1);
  if (last && last.startMs === startMs)
    return [...recent.slice(0, -1), { startMs, count: last.count + requests }];
  return [...recent, { startMs, count: requests }];
}

/** Request buckets starting after this are in the pilot window ending at `nowMs`. */
function pilotRequestHorizonMs(context: Pick<SiteContext, "thresholds">, nowMs: number): number {
  return nowMs - context.thresholds.pilotWindowMs;
}

/** When `pilotRequestsInWindow` next changes with no request counted meanwhile (Infinity for never). */
export function pilotRequestsChangeAtMs(
  context: Pick<SiteContext, "pilots" | "thresholds">,
  nowMs: number,
): number {
  const windowMs = context.thresholds.pilotWindowMs;
  const horizon = pilotRequestHorizonMs(context, nowMs);
  let atMs = Number.POSITIVE_INFINITY;
  for (const bucket of context.pilots.requests)
    if (bucket.startMs > horizon) atMs = Math.min(atMs, bucket.startMs + windowMs);
  return atMs;
}

/** Pilot requests in the window ending at `nowMs`, to the resolution of one bucket: what brokerage reads. */
export function pilotRequestsInWindow(
  context: Pick<SiteContext, "pilots" | "thresholds">,
  nowMs: number,
): number {
  const horizon = pilotRequestHorizonMs(context, nowMs);
  let requests = 0;
  for (const bucket of context.pilots.requests) if (bucket.startMs > horizon) requests += bucket.count;
  return requests;
}
