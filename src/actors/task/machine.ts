/**
 * The task machine: creates its output dataset and jobs, follows its jobs' reports to its end, aborts
 * on kill.
 */
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import type { DatasetEvent } from "../dataset/schema.js";
import type { JobEvent } from "../job/schema.js";
import { emitEffectAction, fanOut, sendEventAction } from "../shared/effects.js";
import { jobIdOf, refs } from "../shared/names.js";
import { eventTimeMs, stampState, timeField } from "../shared/time.js";
import {
  answerBuildWanted,
  buildTemplate,
  liveBuildJobs,
  recordBuildEnded,
  recordBuildRetried,
} from "./builds.js";
import { CREATE_JOBS_EFFECT } from "./jobs.js";
import { isLiveReport, liveJobIndexes, recordOutcome, withAttempt } from "./progress.js";
import {
  type TaskContext,
  type TaskEvent,
  type TaskInput,
  type TaskState,
  taskInputSchema,
} from "./schema.js";

function initialContext(raw: TaskInput): TaskContext {
  const input = taskInputSchema.parse(raw);
  const jobCount = input.jobs.length;
  return {
    taskId: input.taskId,
    user: input.user,
    type: input.type,
    outputDataset: input.outputs.dataset,
    ...(input.payload?.sandbox
      ? { sandbox: { sha256: input.payload.sandbox.sha256, sizeBytes: input.payload.sandbox.sizeBytes } }
      : {}),
    ...buildContext(raw),
    jobCount,
    attempts: new Array<number>(jobCount).fill(1),
    outcomes: new Array<null>(jobCount).fill(null),
    counts: { live: jobCount, retries: 0, finished: 0, failed: 0, cancelled: 0, closed: 0 },
    failuresByClass: {},
    killedBy: null,
    timestamps: {},
    lastAtMs: input.atMs ?? null,
  };
}

function buildContext(input: TaskInput): Pick<TaskContext, "build"> {
  const template = buildTemplate(input);
  return template ? { build: { template, sites: {} } } : {};
}

function killEvent(context: TaskContext): JobEvent {
  const by = context.killedBy?.by ?? "task";
  const reason = `task ${context.taskId} aborted${context.killedBy?.reason ? `: ${context.killedBy.reason}` : ""}`;
  return { type: "kill", by, reason, ...timeField(context.lastAtMs) };
}

export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    input: {} as TaskInput,
    events: {} as TaskEvent,
  },
  actions: {
    ...effectActions,
    answerBuildWanted,
    recordBuildRetried,
    recordBuildEnded,
    enterState: assign(({ context, event }, params: { state: TaskState }) =>
      stampState(context, event, params.state),
    ),
    /**
     * Runs once, on creation: the task's input is only on the init event, so
     * the job specs never sit in its context. The jobs are one effect, expanded
     * into their creations as admission control lets them in (`expandTaskJobs`).
     */
    createOutputAndJobs: fanOut<TaskContext, TaskEvent>(({ context, event, enqueue }) => {
      const input = (event as unknown as { input: TaskInput }).input;
      const dataset: DatasetEvent = {
        type: "create",
        input: { name: context.outputDataset, state: "open", ...timeField(context.lastAtMs) },
      };
      enqueue(sendEventAction(refs.dataset(context.outputDataset), dataset, "intake"));
      enqueue(emitEffectAction(CREATE_JOBS_EFFECT, input));
    }),
    /** A report from an older node (jobs no longer report starting): the attempt is remembered, nothing counted. */
    recordStarted: assign(({ context, event }) => {
      if (event.type !== "job.started") return {};
      return {
        attempts: withAttempt(context.attempts, event.index, event.attempt),
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordRetried: assign(({ context, event }) => {
      if (event.type !== "job.retried") return {};
      return {
        attempts: withAttempt(context.attempts, event.index, event.attempt + 1),
        counts: { ...context.counts, retries: context.counts.retries + 1 },
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordEnded: assign(({ context, event }) => {
      if (event.type !== "job.ended") return {};
      const failuresByClass = { ...context.failuresByClass };
      if (event.outcome === "failed" && event.errorClass) {
        failuresByClass[event.errorClass] = (failuresByClass[event.errorClass] ?? 0) + 1;
      }
      return {
        ...recordOutcome(context, event.index, event.attempt, event.outcome),
        failuresByClass,
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
    recordKill: assign(({ context, event }) => ({
      killedBy: event.type === "kill" ? { by: event.by, reason: event.reason } : context.killedBy,
      lastAtMs: eventTimeMs(event, context.lastAtMs),
    })),
    killLiveJobs: fanOut<TaskContext, TaskEvent>(({ context, enqueue }) => {
      const kill = killEvent(context);
      for (const index of liveJobIndexes(context)) {
        enqueue(sendEventAction(refs.job(jobIdOf(context.taskId, index, context.attempts[index]!)), kill));
      }
      for (const jobId of liveBuildJobs(context)) enqueue(sendEventAction(refs.job(jobId), kill));
    }),
    /** A retry made while the kill was on its way must not outlive the task. */
    killNextAttempt: fanOut<TaskContext, TaskEvent>(({ context, event, enqueue }) => {
      if (event.type === "job.retried")
        enqueue(sendEventAction(refs.job(event.nextJobId), killEvent(context)));
    }),
    freezeOutput: fanOut<TaskContext, TaskEvent>(({ context, enqueue }) => {
      const freeze: DatasetEvent = { type: "freeze", ...timeField(context.lastAtMs) };
      enqueue(sendEventAction(refs.dataset(context.outputDataset), freeze));
    }),
  },
  guards: {
    /** The jobs were just created (the task's first step): it runs from now on. */
    created: ({ event }) => (event as { type: string }).type === "xstate.init",
    liveReport: ({ context, event }) => isLiveReport(context, event),
    everyJobEnded: ({ context }) => context.counts.live === 0,
    everyJobFinished: ({ context }) =>
      context.counts.live === 0 && context.counts.finished === context.jobCount,
    someJobFinished: ({ context }) => context.counts.live === 0 && context.counts.finished > 0,
  },
}).createMachine({
  id: "task",
  context: ({ input }) => initialContext(input),
  initial: "defined",
  states: {
    // As in JEDI, a task runs once its jobs exist: it creates them and moves on at once. A task of
    // machine version 1 may rest here (it waited for a job to start); its first report moves it on.
    defined: {
      entry: [{ type: "enterState", params: { state: "defined" } }, "createOutputAndJobs"],
      always: { guard: "created", target: "running" },
      on: {
        "job.started": { guard: "liveReport", target: "running", actions: "recordStarted" },
        "job.retried": { guard: "liveReport", target: "running", actions: "recordRetried" },
        "job.ended": { guard: "liveReport", target: "running", actions: "recordEnded" },
        kill: { target: "aborting", actions: ["recordKill", "killLiveJobs"] },
      },
    },
    running: {
      entry: { type: "enterState", params: { state: "running" } },
      always: [
        { guard: "everyJobFinished", target: "done" },
        { guard: "someJobFinished", target: "finished" },
        { guard: "everyJobEnded", target: "failed" },
      ],
      on: {
        "job.started": { guard: "liveReport", actions: "recordStarted" },
        "job.retried": { guard: "liveReport", actions: "recordRetried" },
        "job.ended": { guard: "liveReport", actions: "recordEnded" },
        kill: { target: "aborting", actions: ["recordKill", "killLiveJobs"] },
        "build.wanted": { actions: "answerBuildWanted" },
        "build.retried": { actions: "recordBuildRetried" },
        "build.ended": { actions: "recordBuildEnded" },
      },
    },
    aborting: {
      entry: { type: "enterState", params: { state: "aborting" } },
      always: { guard: "everyJobEnded", target: "aborted" },
      on: {
        "job.started": { guard: "liveReport", actions: "recordStarted" },
        "job.retried": { guard: "liveReport", actions: ["recordRetried", "killNextAttempt"] },
        "job.ended": { guard: "liveReport", actions: "recordEnded" },
      },
    },
    done: { type: "final", entry: [{ type: "enterState", params: { state: "done" } }, "freezeOutput"] },
    finished: {
      type: "final",
      entry: [{ type: "enterState", params: { state: "finished" } }, "freezeOutput"],
    },
    failed: { type: "final", entry: [{ type: "enterState", params: { state: "failed" } }, "freezeOutput"] },
    aborted: { type: "final", entry: [{ type: "enterState", params: { state: "aborted" } }, "freezeOutput"] },
  },
});
