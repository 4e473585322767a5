import { jobIdOf } from "../shared/names.js";
import { timeField } from "../shared/time.js";
import type { JobContext, JobInput } from "./schema.js";

export type RetryDecision =
  | { retry: false; reason: string }
  | { retry: true; nextJobId: string; input: JobInput };

/**
 * What a failed attempt does next, per its retry policy. System errors are
 * the grid's fault, not the user's: they do not use up `maxAttempts` but are
 * capped on their own.
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
  const countedAttempts = context.attempt - context.systemFailures;
  if (!isSystem && countedAttempts >= policy.maxAttempts) {
    return { retry: false, reason: `${countedAttempts} of ${policy.maxAttempts} attempts used` };
  }
  const excludedSites =
    policy.excludeFailingSite && context.site && !context.excludedSites.includes(context.site)
      ? [...context.excludedSites, context.site]
      : context.excludedSites;
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
    requestedSite: context.requestedSite,
    retry: policy,
    excludedSites,
    watchdogs: context.watchdogs,
    systemFailures,
    startDelayMs: policy.backoffMs,
    ...timeField(context.lastAtMs),
  };
  return { retry: true, nextJobId: jobIdOf(context.taskId, context.index, attempt), input };
}
