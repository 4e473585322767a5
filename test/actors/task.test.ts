import { describe, expect, it } from "vitest";
import { initialTransition, type SnapshotFrom } from "xstate";
import { jobKind } from "../../src/actors/job/index.js";
import {
  CREATE_JOBS_EFFECT,
  type TaskEvent,
  type TaskInput,
  taskKind,
  taskMachine,
} from "../../src/actors/task/index.js";
import { migrateTask } from "../../src/actors/task/migrate.js";
import { inFile, jobResources, taskInput } from "./fixtures.js";
import { accept, acceptAll, driveThroughRuntime, type Effect, effectsOf, sends } from "./helpers.js";

function create(input: Partial<TaskInput> = {}): [SnapshotFrom<typeof taskMachine>, Effect[]] {
  const [snapshot, actions] = initialTransition(taskMachine, { ...taskInput, ...input });
  return [snapshot, effectsOf(actions)];
}

const ended = (
  index: number,
  outcome: "finished" | "failed" | "cancelled" | "closed",
  attempt = 1,
  atMs = 5_000,
): TaskEvent => ({
  type: "job.ended",
  jobId: `t-1-${index}.${attempt}`,
  index,
  attempt,
  outcome,
  errorClass: outcome === "finished" ? null : outcome === "failed" ? "payload" : "killed",
  site: "BNL",
  atMs,
});
const started = (index: number, attempt = 1): TaskEvent => ({
  type: "job.started",
  jobId: `t-1-${index}.${attempt}`,
  index,
  attempt,
  site: "BNL",
  atMs: 2_000,
});
const retried = (index: number, attempt = 1): TaskEvent => ({
  type: "job.retried",
  jobId: `t-1-${index}.${attempt}`,
  index,
  attempt,
  nextJobId: `t-1-${index}.${attempt + 1}`,
  errorClass: "lostHeartbeat",
  site: "BNL",
  atMs: 3_000,
});
const freezeOutput = { send: "dataset/mc.out", event: { type: "freeze", atMs: 5_000 } };

describe("task", () => {
  it("creates its output dataset and the first attempt of every job on creation, and runs from then on", () => {
    const [snapshot, effects] = create();
    // As in JEDI: a task whose jobs exist is running, whether or not a job started yet.
    expect(snapshot.value).toBe("running");
    expect(snapshot.context).toMatchObject({
      jobCount: 3,
      attempts: [1, 1, 1],
      outcomes: [null, null, null],
      counts: { live: 3, retries: 0, finished: 0, failed: 0, cancelled: 0, closed: 0 },
      timestamps: { defined: 1_000, running: 1_000 },
    });
    expect(sends(effects).map((e) => e.send)).toEqual(["dataset/mc.out"]);
    expect(sends(effects, "dataset/mc.out")[0]?.event).toEqual({
      type: "create",
      input: { name: "mc.out", state: "open", atMs: 1_000 },
    });
    // The jobs are one effect, expanded into their creations when the runtime delivers it.
    const createJobs = effects.filter((e) => "emit" in e && e.emit === CREATE_JOBS_EFFECT);
    expect(createJobs).toHaveLength(1);
    const expansion = taskKind.expansions![CREATE_JOBS_EFFECT]!(
      (createJobs[0] as { data: unknown }).data,
      "fx-1",
    );
    expect(expansion.count).toBe(3);
    expect([0, 1, 2].map((i) => expansion.target(i))).toEqual([
      { kind: "job", id: "t-1-0.1" },
      { kind: "job", id: "t-1-1.1" },
      { kind: "job", id: "t-1-2.1" },
    ]);
    // A later send to one of them finds the expansion by the job kind's group, the task id.
    expect([0, 1, 2].map((i) => jobKind.intakeGroupOf?.(expansion.target(i).id))).toEqual([
      "t-1",
      "t-1",
      "t-1",
    ]);
    expect(
      ["t-1-0.1", "t-1-2.1", "t-1-2.2", "t-1-3.1", "t-10-0.1", "t-1-x.1"].map(expansion.indexOf),
    ).toEqual([0, 2, -1, -1, -1, -1]);
    expect(expansion.build(2).eventId).toBe("fx-1/2");
    expect(expansion.build(1).event).toEqual({
      type: "create",
      input: {
        taskId: "t-1",
        index: 1,
        attempt: 1,
        user: "alice",
        group: null,
        type: "production",
        priority: 100,
        resources: jobResources,
        release: null,
        inputs: [inFile("c")],
        outputs: { dataset: "mc.out" },
        payload: null,
        requestedSite: null,
        retry: { maxAttempts: 2 },
        atMs: 1_000,
      },
    });
  });

  it("is done when every job finished, freezing its output", () => {
    const [runningTask] = create();
    const [almost] = acceptAll(taskMachine, runningTask, [ended(0, "finished"), ended(1, "finished")]);
    expect(almost.value).toBe("running");
    expect(almost.context.counts).toMatchObject({ live: 1, finished: 2 });
    const [done, effects] = accept(taskMachine, almost, ended(2, "finished"));
    expect(done.value).toBe("done");
    expect(done.status).toBe("done");
    expect(effects).toEqual([freezeOutput]);
  });

  it("is finished when some jobs failed after their retries, failed when none finished", () => {
    const [snapshot] = create();
    const [finished] = acceptAll(taskMachine, snapshot, [
      ended(0, "finished"),
      ended(1, "failed"),
      ended(2, "closed"),
    ]);
    expect(finished.value).toBe("finished");
    expect(finished.context.failuresByClass).toEqual({ payload: 1 });
    const [failed] = acceptAll(taskMachine, snapshot, [
      ended(0, "failed"),
      ended(1, "failed"),
      ended(2, "cancelled"),
    ]);
    expect(failed.value).toBe("failed");
    expect(failed.context.counts).toMatchObject({ failed: 2, cancelled: 1, live: 0 });
  });

  it("follows retries to the newest attempt and refuses reports about older ones", () => {
    const [snapshot] = create({ jobs: [{ inputs: [inFile("a")] }] });
    const [retriedOnce] = accept(taskMachine, snapshot, retried(0, 1));
    expect(retriedOnce.context.attempts).toEqual([2]);
    expect(retriedOnce.context.counts.retries).toBe(1);
    expect(retriedOnce.can(ended(0, "failed", 1))).toBe(false);
    expect(retriedOnce.can(retried(0, 1))).toBe(false);
    const [done] = accept(taskMachine, retriedOnce, ended(0, "finished", 2));
    expect(done.value).toBe("done");
  });

  it("accepts a newer attempt's end that overtook its retry notice", () => {
    const [snapshot] = create({ jobs: [{ inputs: [inFile("a")] }] });
    const [done] = accept(taskMachine, snapshot, ended(0, "finished", 2));
    expect(done.value).toBe("done");
    expect(done.context.attempts).toEqual([2]);
  });

  it("refuses reports about jobs it does not have or that already ended", () => {
    const [snapshot] = create();
    expect(snapshot.can(ended(7, "finished"))).toBe(false);
    const [one] = accept(taskMachine, snapshot, ended(0, "finished"));
    expect(one.can(ended(0, "finished"))).toBe(false);
    expect(one.can(started(0))).toBe(false);
  });

  it("on kill, kills every live job's current attempt, and any retry made meanwhile, then is aborted", () => {
    const [snapshot] = create();
    const [progressed] = acceptAll(taskMachine, snapshot, [ended(0, "finished"), retried(1, 1)]);
    const [aborting, kills] = accept(taskMachine, progressed, {
      type: "kill",
      by: "alice",
      reason: "wrong release",
      atMs: 4_000,
    });
    expect(aborting.value).toBe("aborting");
    const kill = { type: "kill", by: "alice", reason: "task t-1 aborted: wrong release", atMs: 4_000 };
    expect(kills).toEqual([
      { send: "job/t-1-1.2", event: kill },
      { send: "job/t-1-2.1", event: kill },
    ]);
    expect(aborting.can({ type: "kill", by: "bob", reason: "again" })).toBe(false);

    const [stillAborting, retryKill] = accept(taskMachine, aborting, retried(2, 1));
    expect(retryKill).toEqual([{ send: "job/t-1-2.2", event: { ...kill, atMs: 3_000 } }]);
    const [aborted, effects] = acceptAll(taskMachine, stillAborting, [
      ended(1, "cancelled", 2),
      ended(2, "cancelled", 2),
    ]);
    expect(aborted.value).toBe("aborted");
    expect(aborted.status).toBe("done");
    expect(aborted.context.killedBy).toEqual({ by: "alice", reason: "wrong release" });
    expect(effects).toEqual([freezeOutput]);
    expect(aborted.can(ended(0, "finished"))).toBe(false);
  });

  it("can be killed before any job reported, reaching every first attempt", () => {
    const [aborting, kills] = accept(taskMachine, create()[0], {
      type: "kill",
      by: "ops",
      reason: "duplicate",
    });
    expect(aborting.value).toBe("aborting");
    expect(kills.map((k) => ("send" in k ? k.send : ""))).toEqual([
      "job/t-1-0.1",
      "job/t-1-1.1",
      "job/t-1-2.1",
    ]);
  });

  it("runs through the runtime's step() and restores from its stored bytes", () => {
    const live = driveThroughRuntime(taskKind, "task/t-1", [
      { type: "create", input: taskInput },
      started(0),
      ended(0, "finished"),
      retried(1),
      ended(1, "failed", 2),
      { type: "kill", by: "alice", reason: "enough" },
      ended(2, "cancelled"),
    ]);
    expect(live.state.value).toBe("aborted");
    expect(live.state.context.counts).toMatchObject({ finished: 1, failed: 1, cancelled: 1, retries: 1 });
  });
});

describe("task snapshots of older machine versions", () => {
  it("version 1 drops the started count; one resting in defined runs with its first job's report", () => {
    const [created] = create();
    const { counts, ...rest } = created.context;
    const v1 = {
      value: "defined",
      context: { ...rest, counts: { ...counts, started: 0 } },
      status: "active" as const,
    };
    const lifted = migrateTask(1, v1);
    expect(lifted.context).toEqual(created.context);
    const resting = taskMachine.resolveState({ value: "defined", context: lifted.context as never });
    const [moved] = accept(taskMachine, resting, started(0));
    expect(moved.value).toBe("running");
    expect(migrateTask(2, v1)).toBe(v1);
  });
});
