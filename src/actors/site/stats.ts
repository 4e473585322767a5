import type { JobState } from "../job/schema.js";
import { appendBounded } from "../shared/bounded.js";
import { type ErrorClass, JOB_OUTCOMES, type JobOutcome } from "../shared/schemas.js";
import type {
  JobStateEvent,
  PilotRequestBucket,
  RecentOutcome,
  SiteContext,
  SiteIncident,
} from "./schema.js";

type JobStats = Pick<SiteContext, "jobs" | "totals" | "recentOutcomes" | "consecutiveSuccesses">;

function isOutcome(state: JobState): state is JobOutcome {
  return (JOB_OUTCOMES as readonly string[]).includes(state);
}

/** Outcomes still inside the window that ends at `nowMs`. */
function trimOutcomes(outcomes: RecentOutcome[], nowMs: number, windowMs: number): RecentOutcome[] {
  return outcomes.filter((o) => o.atMs >= nowMs - windowMs);
}

/** The site's job statistics after one `job.state` report. */
export function recordJobState(context: SiteContext, event: JobStateEvent, nowMs: number): JobStats {
  const jobs = { ...context.jobs };
  if (event.from && !isOutcome(event.from) && (jobs[event.from] ?? 0) > 0) jobs[event.from]! -= 1;
  if (!isOutcome(event.to)) {
    jobs[event.to] = (jobs[event.to] ?? 0) + 1;
    return { ...context, jobs };
  }
  const totals = { ...context.totals, [event.to]: context.totals[event.to] + 1 };
  // A user's kill says nothing about the site; a failure, a success or a system close does.
  if (event.to === "cancelled") return { ...context, jobs, totals };
  const { failureWindowMs, maxRecentOutcomes } = context.thresholds;
  const recentOutcomes = appendBounded(
    trimOutcomes(context.recentOutcomes, nowMs, failureWindowMs),
    { atMs: nowMs, outcome: event.to, errorClass: event.errorClass ?? null },
    maxRecentOutcomes,
  );
  const consecutiveSuccesses =
    event.to === "finished"
      ? context.consecutiveSuccesses + 1
      : event.to === "failed"
        ? 0
        : context.consecutiveSuccesses;
  return { jobs, totals, recentOutcomes, consecutiveSuccesses };
}

export interface FailureSummary {
  jobs: number;
  failed: number;
  failureFraction: number;
  errorClasses: Partial<Record<ErrorClass, number>>;
}

/** Finished and failed jobs in the window ending at `nowMs`; closed jobs are the system's doing, not the site's. */
export function failureSummary(outcomes: RecentOutcome[], nowMs: number, windowMs: number): FailureSummary {
  const errorClasses: Partial<Record<ErrorClass, number>> = {};
  let jobs = 0;
  let failed = 0;
  for (const outcome of trimOutcomes(outcomes, nowMs, windowMs)) {
    if (outcome.outcome === "closed") continue;
    jobs++;
    if (outcome.outcome !== "failed") continue;
    failed++;
    if (outcome.errorClass) errorClasses[outcome.errorClass] = (errorClasses[outcome.errorClass] ?? 0) + 1;
  }
  return { jobs, failed, failureFraction: jobs === 0 ? 0 : failed / jobs, errorClasses };
}

export function isBlackHole(
  context: Pick<SiteContext, "recentOutcomes" | "thresholds">,
  nowMs: number,
): boolean {
  const { blackHoleMinJobs, blackHoleFailureFraction, failureWindowMs } = context.thresholds;
  const summary = failureSummary(context.recentOutcomes, nowMs, failureWindowMs);
  return summary.jobs >= blackHoleMinJobs && summary.failureFraction >= blackHoleFailureFraction;
}

export function openIncident(context: SiteContext, nowMs: number | null): SiteIncident[] {
  const summary = failureSummary(context.recentOutcomes, nowMs ?? 0, context.thresholds.failureWindowMs);
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
): PilotRequestBucket[] {
  const startMs = nowMs - (nowMs % bucketMs(windowMs));
  const recent = buckets.filter((b) => b.startMs > nowMs - windowMs);
  const last = recent.at(-1);
  if (last && last.startMs === startMs) return [...recent.slice(0, -1), { startMs, count: last.count + 1 }];
  return [...recent, { startMs, count: 1 }];
}

/** Pilot requests in the window ending at `nowMs`, to the resolution of one bucket: what brokerage reads. */
export function pilotRequestsInWindow(
  context: Pick<SiteContext, "pilots" | "thresholds">,
  nowMs: number,
): number {
  const { pilotWindowMs } = context.thresholds;
  return context.pilots.requests
    .filter((b) => b.startMs > nowMs - pilotWindowMs)
    .reduce((sum, b) => sum + b.count, 0);
}
