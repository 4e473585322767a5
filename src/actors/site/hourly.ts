/**
 * A site's ended jobs per hour over the last day, per lane (production,
 * analysis), and its failures per error class and code with the last job
 * that failed so: what the monitor's job summary and errors page read, in
 * constant space (25 hourly buckets; at most `MAX_ERROR_KEYS_PER_HOUR` codes
 * per hour, the rest counted under `<class>:*`).
 */
import type { JobType } from "../shared/schemas.js";
import type { HourBucket, JobStateEvent, LaneOutcomes } from "./schema.js";

export const HOUR_MS = 3_600_000;
/** A day of whole hours, plus the hour in progress. */
export const HOURS_KEPT = 25;
/** Distinct `class:code` keys one hour keeps: a payload printing a new code per job cannot grow the site without bound. */
export const MAX_ERROR_KEYS_PER_HOUR = 32;
const TRANSFER_CLASSES: ReadonlySet<string> = new Set(["stagein", "stageout"]);

export function emptyLane(): LaneOutcomes {
  return { finished: 0, failed: 0, closed: 0, cancelled: 0, transferFailed: 0 };
}

/** `production` for every job type but analysis: the lanes of the site's queues. */
function laneOf(type: JobType): "production" | "analysis" {
  return type === "analysis" ? "analysis" : "production";
}

/** The key a failure is counted under: its class and code. */
export function errorKey(errorClass: string, errorCode: string): string {
  return `${errorClass}:${errorCode}`;
}

/** The hours after one ended job's report at `atMs`; hours older than a day are dropped. */
export function countHour(hours: HourBucket[], event: JobStateEvent, atMs: number): HourBucket[] {
  const outcome = event.to;
  if (outcome !== "finished" && outcome !== "failed" && outcome !== "closed" && outcome !== "cancelled")
    return hours;
  const startMs = atMs - (atMs % HOUR_MS);
  const kept = hours.filter((h) => h.startMs > startMs - HOURS_KEPT * HOUR_MS);
  const last = kept.at(-1);
  // A report a little older than the newest hour (clocks of two nodes differ) counts in the newest.
  const joinsLast = last !== undefined && last.startMs >= startMs;
  const lane = laneOf(event.jobType);
  const base = joinsLast ? last : { startMs, production: emptyLane(), analysis: emptyLane(), errors: {} };
  const counts = { ...base[lane], [outcome]: base[lane][outcome] + 1 };
  let errors = base.errors;
  if (outcome === "failed") {
    const errorClass = event.errorClass ?? "system";
    if (TRANSFER_CLASSES.has(errorClass)) counts.transferFailed += 1;
    let key = errorKey(errorClass, event.errorCode ?? "");
    if (!errors[key] && Object.keys(errors).length >= MAX_ERROR_KEYS_PER_HOUR)
      key = errorKey(errorClass, "*");
    errors = { ...errors, [key]: { count: (errors[key]?.count ?? 0) + 1, lastJobId: event.jobId } };
  }
  const bucket: HourBucket = { ...base, [lane]: counts, errors };
  return joinsLast ? [...kept.slice(0, -1), bucket] : [...kept, bucket];
}

/** The hours that overlap the last `windowHours` whole hours and the hour in progress at `nowMs`. */
export function hoursInWindow(
  hours: readonly HourBucket[],
  nowMs: number,
  windowHours: number,
): HourBucket[] {
  const currentStartMs = nowMs - (nowMs % HOUR_MS);
  return hours.filter((h) => h.startMs > currentStartMs - windowHours * HOUR_MS);
}
