/**
 * Actor ids and refs the workload kinds share: job ids, dispatch and sub-destination datasets,
 * subscription ids.
 */
import type { ActorRef } from "../../runtime/actor-ref.js";
import { cachedName2 } from "../../store/name-cache.js";

/** Actor ids of the workload, as docs/workload.md lists them. */

export function jobIdOf(taskId: string, index: number, attempt: number): string {
  return `${taskId}-${index}.${attempt}`;
}

/** The parts `jobIdOf` joined, or null for an id it cannot have made (task ids may hold `-` and `.`). */
export function jobIdParts(jobId: string): { taskId: string; index: number; attempt: number } | null {
  const dash = jobId.lastIndexOf("-");
  const dot = jobId.lastIndexOf(".");
  if (dash <= 0 || dot < dash + 2 || dot === jobId.length - 1) return null;
  const index = wholeNumber(jobId, dash + 1, dot);
  const attempt = wholeNumber(jobId, dot + 1, jobId.length);
  if (index === null || attempt === null) return null;
  return { taskId: jobId.slice(0, dash), index, attempt };
}

/** The decimal digits of `text` from `start` to `end`, as `String(n)` writes n; else null. */
function wholeNumber(text: string, start: number, end: number): number | null {
  if (end - start > 1 && text.charCodeAt(start) === 48) return null;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return null;
    n = n * 10 + digit;
  }
  return end > start && Number.isSafeInteger(n) ? n : null;
}

export function dispatchDatasetName(jobId: string): string {
  return `dis.${jobId}`;
}

export function subDatasetName(outputDataset: string, site: string): string {
  return `${outputDataset}.sub.${site}`;
}

export function subscriptionIdOf(dataset: string, site: string): string {
  return `${dataset}@${site}`;
}

/** A job's own output transfer: per job, so each job hears about exactly its files. */
export function outputSubscriptionId(jobId: string, destination: string): string {
  return `out.${jobId}@${destination}`;
}

export const refs = {
  job: (id: string): ActorRef => ({ kind: "job", id }),
  task: (id: string): ActorRef => ({ kind: "task", id }),
  dataset: (id: string): ActorRef => ({ kind: "dataset", id }),
  subscription: (id: string): ActorRef => ({ kind: "subscription", id }),
  site: (id: string): ActorRef => ({ kind: "site", id }),
};

/** The counter of a site's live jobs in one state (a job in a final state is counted by the site actor instead). */
export const siteJobsCounter = cachedName2((site: string, state: string) => `jobs:${site}:${state}`);

/** Site and state of a `siteJobsCounter` name; null for any other counter. Site names hold no `:`-free guarantee, states do. */
export function parseSiteJobsCounter(name: string): { site: string; state: string } | null {
  if (!name.startsWith("jobs:")) return null;
  const last = name.lastIndexOf(":");
  if (last <= 5) return null;
  return { site: name.slice(5, last), state: name.slice(last + 1) };
}
