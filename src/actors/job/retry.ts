/** Whether a failed job is retried, and the next attempt's input (a retry's or a reassignment's). */
import { jobIdOf } from "../shared/names.js";
import { timeField } from "../shared/time.js";
import type { JobContext, JobInput, Reassignment } from "./schema.js";

export type RetryDecision =
  | { retry: false; reason: string }
  | { retry: true; nextJobId: string; input: JobInput };

type NextAttemptChanges = Pick<
  JobInput,
  "excludedSites" | "requestedSite" | "systemFailures" | "reassignments" | "startDelayMs"
>;

/** The next attempt of the logical job: the same work, with what this attempt's end changes. */
function nextAttempt(
  context: JobContext,
  changes: NextAttemptChanges,
): { nextJobId: string; input: JobInput } {
  const attempt = context.attempt + 1;
  const input: JobInput = {
    taskId: context.taskId,
    index: context.index,
    attempt,
    user: context.user,
    group: context.group,
    type: context.type,
    priority: context.priority,
    resources: context.resources,
    release: context.release,
    inputs: context.inputs,
    outputs: context.outputs,
    payload: context.payload,
    test: context.test,
    ...(context.share ? { share: context.share } : {}),
    retry: context.retry,
    watchdogs: context.watchdogs,
    ...changes,
    ...timeField(context.lastAtMs),
  };
  return { nextJobId: jobIdOf(context.taskId, context.index, attempt), input };
}

/**
 * What a failed attempt does next, per its retry policy. System errors and
 * reassignments are the grid's doing, not the user's: they do not use up
 * `maxAttempts` (system errors are capped on their own).
 */
export function decideRetry(context: JobContext): RetryDecision {
  const errorClass = context.error?.class;
  const policy = context.retry;
  if (!errorClass || !policy.retryErrorClasses.includes(errorClass)) {
    return { retry: false, reason: `error class ${errorClass ?? "unknown"} is not retried` };
  }
  const isSystem = errorClass === "system";
  const systemFailures = context.systemFailures + (isSystem ? 1 : 0);
  if (isSystem && systemFailures > policy.maxSystemRetries) {
    return {
      retry: false,
      reason: `${systemFailures} system failures, at most ${policy.maxSystemRetries} retried`,
    };
  }
  const countedAttempts = context.attempt - context.systemFailures - context.reassignments;
  if (!isSystem && countedAttempts >= policy.maxAttempts) {
    return { retry: false, reason: `${countedAttempts} of ${policy.maxAttempts} attempts used` };
  }
  const excludedSites =
    policy.excludeFailingSite && context.site && !context.excludedSites.includes(context.site)
      ? [...context.excludedSites, context.site]
      : context.excludedSites;
  return {
    retry: true,
    ...nextAttempt(context, {
      excludedSites,
      requestedSite: context.requestedSite,
      systemFailures,
      reassignments: context.reassignments,
      startDelayMs: policy.backoffMs,
    }),
  };
}

/**
 * The attempt after a reassigned one: brokered at once, at the site the
 * operator named (brokerage considers no other) or anywhere but the site it
 * waited at. It counts against nobody's attempts.
 */
export function reassignedAttempt(context: JobContext, reassignment: Reassignment) {
  const leaving = context.site;
  const excluded = reassignment.site
    ? context.excludedSites.filter((site) => site !== reassignment.site)
    : leaving && leaving !== context.requestedSite && !context.excludedSites.includes(leaving)
      ? [...context.excludedSites, leaving]
      : context.excludedSites;
  return nextAttempt(context, {
    excludedSites: excluded,
    requestedSite: reassignment.site ?? context.requestedSite,
    systemFailures: context.systemFailures,
    reassignments: context.reassignments + 1,
    startDelayMs: 0,
  });
}
