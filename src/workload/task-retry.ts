/**
 * Runs the failed logical jobs of a task again as a new task (`<taskId>.rN`):
 * the task's own jobs are final (a retry is a new attempt, and the task has
 * given up on them), and its output dataset is frozen once it ends, so the
 * new task has its own output dataset. Each job keeps its inputs, payload and
 * settings from its last attempt.
 */
import { jobIdOf, refs } from "../actors/shared/names.js";
import { taskListed } from "../actors/task/global-projections.js";
import type { TaskInput } from "../actors/task/schema.js";
import { readContext, type WorkloadContext } from "./context.js";
import { WorkloadError } from "./errors.js";
import { writeIndexEffect } from "./global-indexes.js";

/** A task id not taken yet: `<taskId>.r1`, `.r2`, ... */
async function freeRetryTaskId(ctx: WorkloadContext, taskId: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = `${taskId}.r${n}`;
    if (!(await readContext(ctx, "task", candidate))) return candidate;
  }
}

export async function retryFailedJobs(
  ctx: WorkloadContext,
  taskId: string,
): Promise<{ taskId: string; retriedFrom: string; jobs: number; indexes: number[] }> {
  const task = await readContext(ctx, "task", taskId);
  if (!task) throw new WorkloadError("NOT_FOUND", `task ${taskId} does not exist`, { taskId });
  const indexes = task.context.outcomes.flatMap((outcome, index) => (outcome === "failed" ? [index] : []));
  if (indexes.length === 0) {
    throw new WorkloadError("CONFLICT", `task ${taskId} has no failed jobs to retry`, { taskId });
  }
  const lastAttempts = await Promise.all(
    indexes.map((index) =>
      readContext(ctx, "job", jobIdOf(taskId, index, task.context.attempts[index] ?? 1)),
    ),
  );
  const jobs = lastAttempts.flatMap((job) => (job ? [job.context] : []));
  const first = jobs[0];
  if (!first) throw new WorkloadError("CONFLICT", `the failed jobs of task ${taskId} are gone`, { taskId });
  const newTaskId = await freeRetryTaskId(ctx, taskId);
  const nowMs = ctx.runtime.clock.nowMs();
  const input: TaskInput = {
    taskId: newTaskId,
    user: first.user,
    group: first.group,
    type: first.type,
    priority: first.priority,
    resources: first.resources,
    release: first.release,
    outputs: { dataset: `${newTaskId}.out`, destination: first.outputs.destination },
    payload: first.payload,
    requestedSite: first.requestedSite,
    ...(first.test ? { test: true } : {}),
    retry: first.retry,
    watchdogs: first.watchdogs,
    jobs: jobs.map((job) => ({ inputs: job.inputs })),
    atMs: nowMs,
  };
  await ctx.runtime.send(refs.task(newTaskId), { type: "create", input }, { eventId: `retry:${newTaskId}` });
  // As in `submitTask`: the create's commit carries the entry; written here too for the caller's next read.
  await writeIndexEffect(ctx.index, taskListed(newTaskId, nowMs));
  return { taskId: newTaskId, retriedFrom: taskId, jobs: jobs.length, indexes };
}
