import type { ActorRef } from "../../runtime/actor-ref.js";

/** Actor ids of the workload, as docs/workload.md lists them. */

export function jobIdOf(taskId: string, index: number, attempt: number): string {
  return `${taskId}-${index}.${attempt}`;
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
