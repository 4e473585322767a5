/**
 * How a task reads its jobs' reports: which attempt is current, which report is live, the per-job
 * arrays.
 */
import type { JobOutcome } from "../shared/schemas.js";
import type { TaskContext, TaskEvent } from "./schema.js";

type JobReport = Extract<TaskEvent, { type: "job.started" | "job.retried" | "job.ended" }>;

export function isJobReport(event: TaskEvent): event is JobReport {
  return event.type === "job.started" || event.type === "job.retried" || event.type === "job.ended";
}

/**
 * A report about the logical job's latest known attempt (or a newer one: a
 * retry's end can overtake the retry notice) while it has not ended.
 */
export function isLiveReport(context: TaskContext, event: TaskEvent): boolean {
  if (!isJobReport(event)) return false;
  const known = context.attempts[event.index];
  return known !== undefined && context.outcomes[event.index] === null && event.attempt >= known;
}

export function withAttempt(attempts: number[], index: number, attempt: number): number[] {
  const next = [...attempts];
  next[index] = attempt;
  return next;
}

export function recordOutcome(
  context: TaskContext,
  index: number,
  attempt: number,
  outcome: JobOutcome,
): Pick<TaskContext, "attempts" | "outcomes" | "counts"> {
  const outcomes = [...context.outcomes];
  outcomes[index] = outcome;
  return {
    attempts: withAttempt(context.attempts, index, attempt),
    outcomes,
    counts: { ...context.counts, live: context.counts.live - 1, [outcome]: context.counts[outcome] + 1 },
  };
}

/** Ids of the attempts that may still be running, which a kill must reach. */
export function liveJobIndexes(context: TaskContext): number[] {
  const live: number[] = [];
  context.outcomes.forEach((outcome, index) => {
    if (outcome === null) live.push(index);
  });
  return live;
}
