/** The shapes the API answers with: stable fields picked from actor contexts. */
import type { DatasetContext } from "../actors/dataset/schema.js";
import type { JobContext } from "../actors/job/schema.js";
import { jobStateOf } from "../actors/job/state.js";
import { failureSummary, hasOpenIncident, pilotRequestsInWindow } from "../actors/site/stats.js";
import type { SubscriptionContext } from "../actors/subscription/schema.js";
import type { TaskContext } from "../actors/task/schema.js";
import type { SiteState } from "../workload/sites.js";

export function taskView(state: string, task: TaskContext) {
  const ended = task.counts.finished + task.counts.failed + task.counts.cancelled + task.counts.closed;
  return {
    taskId: task.taskId,
    state,
    user: task.user,
    type: task.type,
    jobCount: task.jobCount,
    counts: task.counts,
    failuresByClass: task.failuresByClass,
    progress: { endedJobs: ended, percentEnded: task.jobCount === 0 ? 100 : (100 * ended) / task.jobCount },
    killedBy: task.killedBy,
    outputDataset: task.outputDataset,
    sandbox: task.sandbox ?? null,
    timestamps: task.timestamps,
  };
}

export function jobView(state: string, job: JobContext) {
  return {
    jobId: job.jobId,
    taskId: job.taskId,
    attempt: job.attempt,
    // The top-level state (`defined`, not `defined.brokering`): what users filter by.
    state: jobStateOf(state),
    site: job.site,
    type: job.type,
    user: job.user,
    priority: job.priority,
    pilot: job.pilot,
    error: job.error,
    timestamps: job.timestamps,
  };
}
export type JobView = ReturnType<typeof jobView>;

export function siteView(site: SiteState, connectedPilots: number, nowMs: number) {
  const recent = failureSummary(site.outcomes, nowMs, site.thresholds.failureWindowMs);
  return {
    name: site.name,
    status: site.status,
    statusInfo: site.statusInfo,
    resources: site.resources,
    jobs: site.jobs,
    totals: site.totals,
    recent: { windowMs: site.thresholds.failureWindowMs, ...recent },
    pilots: {
      connectedToThisNode: connectedPilots,
      lastSeenAtMs: site.pilots.lastSeenAtMs,
      requestsPerMin: pilotRequestsInWindow(site, nowMs) / (site.thresholds.pilotWindowMs / 60_000),
    },
    openIncident: hasOpenIncident(site) ? (site.incidents.at(-1) ?? null) : null,
    incidents: site.incidents.length,
    reassignAfterMs: site.thresholds.reassignAfterMs,
    lastDrain: site.drain ?? null,
  };
}

export function datasetView(state: string, dataset: DatasetContext) {
  return {
    name: dataset.name,
    state,
    parent: dataset.parent,
    fileCount: dataset.fileCount,
    totalBytes: dataset.totalBytes,
    files: Object.entries(dataset.files).map(([lfn, file]) => ({ lfn, ...file })),
    replicas: Object.entries(dataset.replicas).map(([site, lfns]) => ({
      site,
      files: lfns.length,
      complete: lfns.length === dataset.fileCount,
      lfns,
    })),
    timestamps: dataset.timestamps,
  };
}

export function subscriptionView(state: string, sub: SubscriptionContext) {
  return {
    id: sub.id,
    state,
    dataset: sub.dataset,
    site: sub.site,
    purpose: sub.purpose,
    requester: sub.requester,
    progress: sub.progress,
    failure: sub.failure,
    timestamps: sub.timestamps,
  };
}
