/** What dispatch ordering needs to know about a job waiting at a site. */
export interface QueuedJob {
  jobId: string;
  priority: number;
  /** When the job entered the queue it waits in; older goes first among equals. */
  queuedAtMs: number;
}

/** Higher priority first, then older, then job id so the order never depends on input order. */
export function compareForDispatch(a: QueuedJob, b: QueuedJob): number {
  return b.priority - a.priority || compareByAge(a, b);
}

/** Older first, job id as the last word. */
export function compareByAge(a: QueuedJob, b: QueuedJob): number {
  return a.queuedAtMs - b.queuedAtMs || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
}

/** A site's activated jobs in the order free pilot threads should receive them. */
export function orderForDispatch<T extends QueuedJob>(jobs: readonly T[]): T[] {
  return [...jobs].sort(compareForDispatch);
}
