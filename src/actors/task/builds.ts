/**
 * A task's build step, as pathena's: one build job per site its run jobs are
 * placed at, made when the first of them asks (`build.wanted`); its sandbox
 * is handed to every run job waiting there and to later ones at once; a
 * build that fails for good fails them (class stagein), and their own retry
 * policy may take them to another site, where another build is made.
 */
import type { JobEvent, JobInput } from "../job/schema.js";
import { fanOut, sendEventAction } from "../shared/effects.js";
import { jobIdOf, refs } from "../shared/names.js";
import { eventTimeMs, timeField } from "../shared/time.js";
import { firstAttempt } from "./jobs.js";
import type { SiteBuild, TaskContext, TaskEvent, TaskInput } from "./schema.js";

/**
 * What a task's build jobs are made from, or null for a task without a build:
 * the run jobs' shared settings, no inputs or outputs, the build command in
 * the source sandbox. A build job is retried at its own site only.
 */
export function buildTemplate(input: TaskInput): JobInput | null {
  const payload = input.payload;
  if (!payload?.build || !payload.sandbox) return null;
  // A first run job's settings (the task has at least one), less what is the run jobs' own.
  const { atMs: _atMs, ...shared } = (firstAttempt(input, 0) as Extract<JobEvent, { type: "create" }>).input;
  return {
    ...shared,
    inputs: [],
    requestedSite: null,
    payload: {
      command: payload.build.command,
      env: payload.env ?? {},
      outputs: [],
      sandbox: payload.sandbox,
      producesSandbox: { maxBytes: payload.build.maxBytes },
    },
    retry: { ...input.retry, excludeFailingSite: false },
  };
}

function answer(site: string, build: SiteBuild, atMs: number | null): JobEvent | null {
  if (build.state === "built" && build.sandbox)
    return { type: "build.ready", site, sandbox: build.sandbox, ...timeField(atMs) };
  if (build.state === "failed")
    return { type: "build.failed", site, reason: build.reason ?? "", ...timeField(atMs) };
  return null;
}

function withSite(context: TaskContext, site: string, build: SiteBuild) {
  return { build: { template: context.build!.template, sites: { ...context.build!.sites, [site]: build } } };
}

/** A run job asks for its site's build: answered at once when there is one, else it waits, and the first asker makes it. */
export const answerBuildWanted = fanOut<TaskContext, TaskEvent>(({ context, event, enqueue }) => {
  if (event.type !== "build.wanted" || !context.build) return;
  const atMs = eventTimeMs(event, context.lastAtMs);
  const existing = context.build.sites[event.site];
  if (existing) {
    const reply = answer(event.site, existing, atMs);
    if (reply) enqueue(sendEventAction(refs.job(event.jobId), reply));
    else if (!existing.waiting.includes(event.jobId)) {
      enqueue.assign(
        withSite(context, event.site, { ...existing, waiting: [...existing.waiting, event.jobId] }),
      );
    }
    return;
  }
  // Build jobs take the indexes after the run jobs', one per site in the order they were asked for.
  const index = context.jobCount + Object.keys(context.build.sites).length;
  const jobId = jobIdOf(context.taskId, index, 1);
  const input: JobInput = { ...context.build.template, index, requestedSite: event.site, ...timeField(atMs) };
  const create: JobEvent = { type: "create", input };
  enqueue(sendEventAction(refs.job(jobId), create));
  enqueue.assign({
    ...withSite(context, event.site, {
      state: "building",
      jobId,
      sandbox: null,
      reason: null,
      waiting: [event.jobId],
    }),
    lastAtMs: atMs,
  });
});

export const recordBuildRetried = fanOut<TaskContext, TaskEvent>(({ context, event, enqueue }) => {
  if (event.type !== "build.retried" || !context.build) return;
  const build = context.build.sites[event.site];
  if (build?.state === "building")
    enqueue.assign(withSite(context, event.site, { ...build, jobId: event.nextJobId }));
});

/** The site's build ended: its waiting run jobs get the sandbox, or the reason it failed. */
export const recordBuildEnded = fanOut<TaskContext, TaskEvent>(({ context, event, enqueue }) => {
  if (event.type !== "build.ended" || !context.build) return;
  const build = context.build.sites[event.site];
  if (build?.state !== "building" || build.jobId !== event.jobId) return;
  const limits = context.build.template.payload?.sandbox;
  const atMs = eventTimeMs(event, context.lastAtMs);
  const ended: SiteBuild =
    event.sandbox && limits
      ? {
          state: "built",
          jobId: event.jobId,
          sandbox: {
            ...event.sandbox,
            maxUnpackedBytes: limits.maxUnpackedBytes,
            maxEntries: limits.maxEntries,
          },
          reason: null,
          waiting: [],
        }
      : { state: "failed", jobId: event.jobId, sandbox: null, reason: event.reason, waiting: [] };
  const reply = answer(event.site, ended, atMs);
  for (const jobId of build.waiting) if (reply) enqueue(sendEventAction(refs.job(jobId), reply));
  enqueue.assign({ ...withSite(context, event.site, ended), lastAtMs: atMs });
});

/** A task killed takes its builds still running with it. */
export function liveBuildJobs(context: TaskContext): string[] {
  return Object.values(context.build?.sites ?? {})
    .filter((b) => b.state === "building")
    .map((b) => b.jobId);
}
