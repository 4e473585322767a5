/**
 * The events and effect payloads a job sends, built from its context. Kept
 * apart from the machine so each message's shape is in one place.
 */
import type { DatasetEvent } from "../dataset/schema.js";
import {
  dispatchDatasetName,
  outputSubscriptionId,
  refs,
  subDatasetName,
  subscriptionIdOf,
} from "../shared/names.js";
import type { FileToMove } from "../shared/schemas.js";
import { timeField } from "../shared/time.js";
import type { SiteEvent } from "../site/schema.js";
import type { SubscriptionEvent } from "../subscription/schema.js";
import type { TaskEvent } from "../task/schema.js";
import type { JobContext, JobOutcomeState, JobState } from "./schema.js";

function atMsOf(context: JobContext): { atMs?: number } {
  return timeField(context.lastAtMs);
}

export function brokerRequest(context: JobContext) {
  return {
    jobId: context.jobId,
    taskId: context.taskId,
    attempt: context.attempt,
    type: context.type,
    user: context.user,
    group: context.group,
    priority: context.priority,
    resources: context.resources,
    release: context.release,
    inputs: context.inputs,
    excludedSites: context.excludedSites,
    // Built at its site, a run job is brokered again only to run there.
    requestedSite: context.builtSandbox ? context.site : context.requestedSite,
    isTest: context.test,
    tries: context.brokerage.tries,
  };
}

export function queueEntry(context: JobContext) {
  return {
    site: context.site,
    jobId: context.jobId,
    taskId: context.taskId,
    attempt: context.attempt,
    priority: context.priority,
    type: context.type,
    user: context.user,
    group: context.group,
    resources: context.resources,
    activatedAtMs: context.lastAtMs,
    test: context.test,
  };
}

export function dispatchNames(jobId: string, site: string) {
  const dataset = dispatchDatasetName(jobId);
  return { dataset, subscription: subscriptionIdOf(dataset, site) };
}

/** A run job placed at a site asks its task for that site's build. */
export function buildWanted(context: JobContext): TaskEvent {
  return { type: "build.wanted", site: context.site ?? "", jobId: context.jobId, ...atMsOf(context) };
}

/** The dispatch dataset is born frozen with exactly the files to move; the subscription brings them to the site. */
export function dispatchCreation(context: JobContext, site: string, files: FileToMove[]) {
  const names = dispatchNames(context.jobId, site);
  const replicas: Record<string, string[]> = {};
  for (const file of files) replicas[file.sourceSite] = [...(replicas[file.sourceSite] ?? []), file.lfn];
  const dataset: DatasetEvent = {
    type: "create",
    input: {
      name: names.dataset,
      state: "frozen",
      files: files.map(({ lfn, sizeBytes, checksum }) => ({ lfn, sizeBytes, checksum })),
      replicas,
      ...atMsOf(context),
    },
  };
  const subscription: SubscriptionEvent = {
    type: "create",
    input: {
      id: names.subscription,
      dataset: names.dataset,
      site,
      files,
      requester: refs.job(context.jobId),
      purpose: "dispatch",
      ...atMsOf(context),
    },
  };
  return {
    dataset: { to: refs.dataset(names.dataset), event: dataset },
    subscription: { to: refs.subscription(names.subscription), event: subscription },
  };
}

/**
 * Registration of the job's files in its site's sub-destination dataset. The
 * `create` makes sure the dataset exists (it is refused, harmlessly, when an
 * earlier job made it); `files.add` is idempotent and answered with the job id.
 */
export function outputRegistration(context: JobContext, site: string) {
  const name = subDatasetName(context.outputs.dataset, site);
  const create: DatasetEvent = {
    type: "create",
    input: { name, state: "open", parent: context.outputs.dataset, ...atMsOf(context) },
  };
  const add: DatasetEvent = {
    type: "files.add",
    files: context.producedFiles,
    site,
    reply: { to: refs.job(context.jobId), requestId: context.jobId },
    ...atMsOf(context),
  };
  return { to: refs.dataset(name), create, add };
}

export function outputTransfer(context: JobContext, site: string, destination: string) {
  const id = outputSubscriptionId(context.jobId, destination);
  const event: SubscriptionEvent = {
    type: "create",
    input: {
      id,
      dataset: context.outputs.dataset,
      site: destination,
      files: context.producedFiles.map((file) => ({ ...file, sourceSite: site })),
      requester: refs.job(context.jobId),
      purpose: "output",
      ...atMsOf(context),
    },
  };
  return { to: refs.subscription(id), event };
}

/** The site's `job.state` report of a job entering `to` from `from` at `atMs`, built member by member. */
export function siteReport(
  context: JobContext,
  from: JobState | null,
  to: JobState,
  atMs: number | null,
): SiteEvent {
  const report: Extract<SiteEvent, { type: "job.state" }> = {
    type: "job.state",
    jobId: context.jobId,
    from,
    to,
    jobType: context.type,
  };
  if (context.error) {
    report.errorClass = context.error.class;
    report.errorCode = context.error.code;
  }
  if (context.reassignment) report.reassigned = true;
  if (atMs !== null) report.atMs = atMs;
  return report;
}

function jobReport(context: JobContext) {
  return { jobId: context.jobId, index: context.index, attempt: context.attempt, ...atMsOf(context) };
}

/** What a build job tells its task when it ends: the sandbox it made, or why there is none. */
function buildEndedReport(context: JobContext, outcome: JobOutcomeState): TaskEvent {
  const made = outcome === "finished" ? context.producedSandbox : undefined;
  return {
    type: "build.ended",
    jobId: context.jobId,
    site: context.requestedSite ?? context.site ?? "",
    ...(made ? { sandbox: made } : {}),
    reason: made
      ? ""
      : outcome === "finished"
        ? "the build job reported no sandbox (a pilot without build support?)"
        : (context.error?.message ?? `the build job ended ${outcome}`),
    ...atMsOf(context),
  };
}

/** A literal per shape, not a spread of `jobReport`: one of these is sent per job, and a spread costs V8 microseconds. */
export function endedReport(context: JobContext, outcome: JobOutcomeState): TaskEvent {
  if (context.payload?.producesSandbox) return buildEndedReport(context, outcome);
  const { jobId, index, attempt, lastAtMs: atMs, site } = context;
  const errorClass = outcome === "finished" ? null : (context.error?.class ?? null);
  return atMs === null
    ? { type: "job.ended", jobId, index, attempt, outcome, errorClass, site }
    : { type: "job.ended", jobId, index, attempt, atMs, outcome, errorClass, site };
}

export function retriedReport(context: JobContext, nextJobId: string): TaskEvent {
  if (context.payload?.producesSandbox) {
    return { type: "build.retried", site: context.requestedSite ?? "", nextJobId, ...atMsOf(context) };
  }
  return {
    type: "job.retried",
    ...jobReport(context),
    nextJobId,
    errorClass: context.error?.class ?? "system",
    site: context.site,
  };
}

export function pilotKill(context: JobContext, reason: string) {
  return { pilotId: context.pilot?.pilotId, jobId: context.jobId, attempt: context.attempt, reason };
}
