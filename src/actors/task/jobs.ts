/**
 * A task's jobs, created as admission control lets them in: the task's
 * creation commits one effect carrying its input, and each job's create
 * event is built from it only when that job's turn comes (see
 * `IntakeExpander`).
 */
import type { IntakeExpansion } from "../../runtime/kinds.js";
import type { JobEvent, JobInput } from "../job/schema.js";
import { jobIdOf, jobIdParts, refs } from "../shared/names.js";
import { timeField } from "../shared/time.js";
import type { TaskInput } from "./schema.js";

export const CREATE_JOBS_EFFECT = "task.createJobs";

/** The first attempt of logical job `index`, from the task's shared settings and the job's share of the inputs. */
export function firstAttempt(input: TaskInput, index: number): JobEvent {
  const job: JobInput = {
    taskId: input.taskId,
    index,
    attempt: 1,
    user: input.user,
    group: input.group ?? null,
    type: input.type,
    priority: input.priority,
    resources: input.resources,
    release: input.release ?? null,
    inputs: input.jobs[index]!.inputs,
    outputs: input.outputs,
    payload: input.payload ?? null,
    requestedSite: input.requestedSite ?? null,
    ...(input.test ? { test: true } : {}),
    ...(input.share ? { share: input.share } : {}),
    ...(input.retry ? { retry: input.retry } : {}),
    ...(input.watchdogs ? { watchdogs: input.watchdogs } : {}),
    ...timeField(input.atMs ?? null),
  };
  return { type: "create", input: job };
}

/**
 * The task's own effect, written by its machine from input the task's schema
 * accepted: trusted as the node's other committed effects are. Its targets
 * are the jobs' first attempts, in the task's group (`jobKind.intakeGroupOf`).
 */
export function expandTaskJobs(data: unknown, effectId: string): IntakeExpansion {
  const input = data as TaskInput;
  return {
    count: input.jobs.length,
    target: (index) => refs.job(jobIdOf(input.taskId, index, 1)),
    indexOf: (id) => {
      const parts = jobIdParts(id);
      return parts && parts.taskId === input.taskId && parts.attempt === 1 && parts.index < input.jobs.length
        ? parts.index
        : -1;
    },
    build: (index) => ({ event: firstAttempt(input, index), eventId: `${effectId}/${index}` }),
  };
}
