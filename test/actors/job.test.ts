import { describe, expect, it } from "vitest";
import { initialTransition, type SnapshotFrom } from "xstate";
import {
  DEFAULT_REASSIGN_AFTER_MS,
  JOB_STATES,
  type JobError,
  type JobEvent,
  type JobInput,
  jobKind,
  jobMachine,
  jobStateOf,
} from "../../src/actors/job/index.js";
import { migrateJob } from "../../src/actors/job/migrate.js";
import { jobProjections, queueScore, shareRunningFrom } from "../../src/actors/job/projections.js";
import type { ErrorClass, JobOutcome } from "../../src/actors/shared/schemas.js";
import type { TaskEvent } from "../../src/actors/task/schema.js";
import { projectionChanges } from "../../src/runtime/projections.js";
import { encodeSnapshotRecord } from "../../src/runtime/records.js";
import { restore, step } from "../../src/runtime/step.js";
import { inFile, jobResources } from "./fixtures.js";
import {
  accept,
  acceptAll,
  driveThroughRuntime,
  type Effect,
  effectsOf,
  emits,
  eventTypesSent,
  fire,
  sends,
  timers,
} from "./helpers.js";

const JOB = "t-1-0.1";

/** What moving from one state to the next changes in the shard's indexes and counters. */
function projected(before: SnapshotFrom<typeof jobMachine>, after: SnapshotFrom<typeof jobMachine>) {
  return projectionChanges(jobProjections.of(before, JOB), jobProjections.of(after, JOB));
}
const baseInput: JobInput = {
  taskId: "t-1",
  index: 0,
  user: "alice",
  type: "production",
  priority: 100,
  resources: jobResources,
  inputs: [inFile("in1"), inFile("in2")],
  outputs: { dataset: "mc.out" },
  atMs: 1_000,
};

function create(overrides: Partial<JobInput> = {}): [SnapshotFrom<typeof jobMachine>, Effect[]] {
  const [snapshot, actions] = initialTransition(jobMachine, { ...baseInput, ...overrides });
  return [snapshot, effectsOf(actions)];
}

const brokered = (
  site: string | null,
  extra: Partial<Extract<JobEvent, { type: "brokered" }>> = {},
): JobEvent => ({
  type: "brokered",
  site,
  filesToMove: [],
  waitingFor: [],
  decision: { chosen: site, candidates: 3 },
  atMs: 2_000,
  ...extra,
});
const dispatch: JobEvent = { type: "dispatch", pilotId: "p1", thread: "primary", atMs: 3_000 };
type PilotReport = Extract<JobEvent, { type: "pilot.starting" | "pilot.running" | "pilot.heartbeat" }>;
const pilot = (type: PilotReport["type"], atMs: number, attempt = 1): PilotReport => ({
  type,
  pilotId: "p1",
  attempt,
  atMs,
});
const outputFile = { lfn: "out1", sizeBytes: 5, checksum: "ad:out1" };
const logFile = { lfn: "log1", sizeBytes: 1, checksum: "ad:log1" };
const endedOk: Extract<JobEvent, { type: "pilot.ended" }> = {
  type: "pilot.ended",
  pilotId: "p1",
  attempt: 1,
  exitCode: 0,
  outputs: [outputFile],
  log: logFile,
  atMs: 9_000,
};

function activated(overrides: Partial<JobInput> = {}) {
  const [created] = create(overrides);
  return accept(jobMachine, created, brokered("BNL"))[0];
}

function running(overrides: Partial<JobInput> = {}) {
  const attempt = overrides.attempt ?? 1;
  return acceptAll(jobMachine, activated(overrides), [
    dispatch,
    pilot("pilot.starting", 4_000, attempt),
    pilot("pilot.running", 5_000, attempt),
  ])[0];
}

/** The effect list without the site's live-job counts and outcome report, for tests about other effects. */
function withoutSiteReports(effects: Effect[]): Effect[] {
  return effects.filter((e) => !("count" in e) && !("send" in e && e.send.startsWith("site/")));
}

/** The `job.ended` the first attempt sends its task. */
function endedReport(
  atMs: number,
  outcome: JobOutcome,
  errorClass: ErrorClass | null,
  site: string | null,
): Effect {
  const event: TaskEvent = {
    type: "job.ended",
    jobId: JOB,
    index: 0,
    attempt: 1,
    atMs,
    outcome,
    errorClass,
    site,
  };
  return { send: "task/t-1", event };
}

/** Applies an event that must end the job in `state`, and checks the error it records. */
function expectEnd(
  snapshot: SnapshotFrom<typeof jobMachine>,
  event: JobEvent,
  state: "failed" | "cancelled" | "closed",
  error: JobError,
): [SnapshotFrom<typeof jobMachine>, Effect[]] {
  const [ended, effects] = accept(jobMachine, snapshot, event);
  expect(ended.value).toBe(state);
  expect(ended.status).toBe("done");
  expect(ended.context.error).toEqual(error);
  return [ended, effects];
}

describe("job", () => {
  describe("creation and brokerage", () => {
    it("is defined on creation and asks brokerage for a site with its needs", () => {
      const [snapshot, effects] = create();
      expect(snapshot.value).toEqual({ defined: "brokering" });
      expect(jobStateOf(snapshot)).toBe("defined");
      expect(snapshot.context).toMatchObject({
        jobId: JOB,
        attempt: 1,
        timestamps: { defined: 1_000 },
        retry: { maxAttempts: 3, backoffMs: 0, excludeFailingSite: true },
        watchdogs: {
          sentTimeoutMs: 300_000,
          heartbeatTimeoutMs: 600_000,
          rebrokerMs: 60_000,
          maxBrokerageTries: 10,
        },
      });
      expect(effects).toEqual([
        {
          emit: "broker.request",
          data: {
            jobId: JOB,
            taskId: "t-1",
            attempt: 1,
            type: "production",
            user: "alice",
            group: null,
            priority: 100,
            resources: baseInput.resources,
            release: null,
            inputs: baseInput.inputs,
            excludedSites: [],
            requestedSite: null,
            isTest: false,
            tries: 0,
          },
        },
      ]);
    });

    it("defaults analysis jobs to more attempts", () => {
      expect(create({ type: "analysis" })[0].context.retry.maxAttempts).toBe(10);
    });

    it("accepts only brokerage while defined", () => {
      const [snapshot] = create();
      expect(snapshot.can(dispatch)).toBe(false);
      expect(snapshot.can(pilot("pilot.running", 1))).toBe(false);
      expect(snapshot.can({ type: "inputs.ready", subscription: `dis.${JOB}@BNL` })).toBe(false);
      expect(snapshot.can({ type: "outputs.registered", requestId: JOB, dataset: "mc.out", lfns: [] })).toBe(
        false,
      );
    });

    it("goes straight to activated at a site that holds every input, queueing itself there", () => {
      const [snapshot] = create();
      const [next, effects] = accept(jobMachine, snapshot, brokered("BNL"));
      expect(next.value).toBe("activated");
      expect(next.context).toMatchObject({
        site: "BNL",
        brokerage: { tries: 1 },
        timestamps: { defined: 1_000, activated: 2_000 },
      });
      // Its site's queue, its count there and its user's quota follow from the state.
      expect(projected(snapshot, next)).toEqual({
        index: [{ key: "site-queue:BNL:production:default", member: JOB, score: queueScore(100, 2_000) }],
        counters: [
          { name: "jobs:BNL:activated", delta: 1 },
          { name: "users:alice:active", delta: 1 },
        ],
      });
      expect(effects).toEqual([
        {
          emit: "queue.add",
          data: {
            site: "BNL",
            jobId: JOB,
            taskId: "t-1",
            attempt: 1,
            priority: 100,
            type: "production",
            user: "alice",
            group: null,
            resources: baseInput.resources,
            activatedAtMs: 2_000,
            test: false,
          },
        },
      ]);
    });

    it("re-brokers after rebrokerMs when no site fits, and fails with a brokerage error after the last try", () => {
      const [snapshot] = create({ watchdogs: { maxBrokerageTries: 2, rebrokerMs: 30_000 } });
      const [backingOff, first] = accept(jobMachine, snapshot, brokered(null));
      expect(backingOff.value).toEqual({ defined: "backingOff" });
      expect(timers(first)).toEqual([
        { raise: "xstate.after.rebroker.job.defined.backingOff", delayMs: 30_000 },
      ]);
      expect(backingOff.can(brokered(null))).toBe(false);

      const [again, second] = fire(jobMachine, backingOff, timers(first)[0]!);
      expect(again.value).toEqual({ defined: "brokering" });
      expect(emits(second, "broker.request")[0]?.data).toMatchObject({ tries: 1 });

      const [, last] = expectEnd(again, brokered(null, { atMs: 40_000 }), "failed", {
        class: "brokerage",
        code: "noSite",
        message: "no site after 2 brokerage tries",
      });
      expect(last).toEqual([
        {
          emit: "job.final",
          data: { jobId: JOB, user: "alice", site: null, outcome: "failed", from: "defined" },
        },
        endedReport(40_000, "failed", "brokerage", null),
      ]);
    });

    it("waits for inputs not yet produced, watching their datasets, then re-brokers", () => {
      const [snapshot] = create({ inputs: [inFile("in1"), { ...inFile("in2"), dataset: "mc.other" }] });
      const [waiting, effects] = accept(
        jobMachine,
        snapshot,
        brokered("BNL", { waitingFor: ["in1", "in2", "not-an-input"] }),
      );
      expect(waiting.value).toBe("waiting");
      expect(waiting.context.waitingFor).toEqual(["in1", "in2"]);
      expect(waiting.context.site).toBeNull();
      expect(sends(effects)).toEqual([
        { send: "dataset/mc.in", event: { type: "watch", jobId: JOB, lfns: ["in1"], atMs: 2_000 } },
        { send: "dataset/mc.other", event: { type: "watch", jobId: JOB, lfns: ["in2"], atMs: 2_000 } },
      ]);
      expect(waiting.can({ type: "input.available", dataset: "mc.in", lfns: ["zzz"] })).toBe(false);

      const [stillWaiting] = accept(jobMachine, waiting, {
        type: "input.available",
        dataset: "mc.in",
        lfns: ["in1"],
      });
      expect(stillWaiting.value).toBe("waiting");
      const [defined, again] = accept(jobMachine, stillWaiting, {
        type: "input.available",
        dataset: "mc.other",
        lfns: ["in2"],
        atMs: 8_000,
      });
      expect(defined.value).toEqual({ defined: "brokering" });
      expect(emits(again, "broker.request")).toHaveLength(1);
    });

    it("fails with a stage-in error when an awaited input will never be produced", () => {
      const [snapshot] = create();
      const [waiting] = accept(jobMachine, snapshot, brokered("BNL", { waitingFor: ["in1"] }));
      const [failed] = accept(jobMachine, waiting, {
        type: "input.missing",
        dataset: "mc.in",
        lfns: ["in1"],
      });
      expect(failed.value).toBe("failed");
      expect(failed.context.error).toMatchObject({ class: "stagein", code: "input.missing" });
    });
  });

  describe("assigned: inputs moved to the site first", () => {
    const filesToMove = [{ lfn: "in2", sizeBytes: 100, checksum: "ad:in2", sourceSite: "CERN" }];

    function assigned() {
      const [snapshot] = create();
      return accept(jobMachine, snapshot, brokered("BNL", { filesToMove }));
    }

    it("creates the frozen dispatch dataset and its subscription, and arms the stage-in watchdog", () => {
      const [job, effects] = assigned();
      expect(job.value).toBe("assigned");
      expect(job.context.dispatch).toEqual({ dataset: `dis.${JOB}`, subscription: `dis.${JOB}@BNL` });
      expect(withoutSiteReports(effects)).toEqual([
        {
          send: `dataset/dis.${JOB}`,
          event: {
            type: "create",
            input: {
              name: `dis.${JOB}`,
              state: "frozen",
              files: [{ lfn: "in2", sizeBytes: 100, checksum: "ad:in2" }],
              replicas: { CERN: ["in2"] },
              atMs: 2_000,
            },
          },
        },
        {
          send: `subscription/dis.${JOB}@BNL`,
          event: {
            type: "create",
            input: {
              id: `dis.${JOB}@BNL`,
              dataset: `dis.${JOB}`,
              site: "BNL",
              files: filesToMove,
              requester: { kind: "job", id: JOB },
              purpose: "dispatch",
              atMs: 2_000,
            },
          },
        },
        { raise: "xstate.after.assignedTimeout.job.assigned", delayMs: 7_200_000 },
      ]);
      // Listed among its site's assigned jobs since the second it was assigned: where the sweep of stale waits looks.
      expect(projected(create()[0], job).index).toEqual([
        { key: "site-assigned:BNL", member: JOB, score: 2 },
      ]);
    });

    it("is activated by its own subscription only, which cancels the watchdog", () => {
      const [job] = assigned();
      expect(job.can({ type: "inputs.ready", subscription: "dis.other@BNL" })).toBe(false);
      const [active, effects] = accept(jobMachine, job, {
        type: "inputs.ready",
        subscription: `dis.${JOB}@BNL`,
      });
      expect(active.value).toBe("activated");
      expect(effects[0]).toEqual({ cancel: "xstate.after.assignedTimeout.job.assigned" });
      expect(emits(effects, "queue.add")).toHaveLength(1);
    });

    it("fails with stagein when the subscription fails or the watchdog fires", () => {
      const [job, effects] = assigned();
      expectEnd(
        job,
        { type: "inputs.failed", subscription: `dis.${JOB}@BNL`, reason: "in2: source lost" },
        "failed",
        { class: "stagein", code: "inputs.failed", message: "in2: source lost" },
      );

      const [timedOut] = fire(jobMachine, job, timers(effects)[0]!);
      expect(timedOut.value).toBe("failed");
      expect(timedOut.context.error).toMatchObject({ class: "stagein", code: "assignedTimeout" });
      expect(timedOut.context.timestamps.failed).toBe(2_000 + 7_200_000);
    });
  });

  describe("queue, dispatch and the pilot", () => {
    it("leaves the queue when throttled and re-enters it when released", () => {
      const [throttled, out] = accept(jobMachine, activated(), { type: "throttle", reason: "user cap" });
      expect(throttled.value).toBe("throttled");
      expect(emits(out)).toEqual([]);
      expect(projected(activated(), throttled)).toEqual({
        index: [
          { key: "site-queue:BNL:production:default", member: JOB, score: null },
          { key: "user-throttled:alice", member: JOB, score: queueScore(0, 2_000) },
        ],
        counters: [
          { name: "jobs:BNL:throttled", delta: 1 },
          { name: "users:alice:throttled", delta: 1 },
          { name: "jobs:BNL:activated", delta: -1 },
          { name: "users:alice:active", delta: -1 },
        ],
      });
      expect(throttled.can(dispatch)).toBe(false);
      const [back, inAgain] = accept(jobMachine, throttled, { type: "release", atMs: 9_000 });
      expect(back.value).toBe("activated");
      expect(emits(inAgain, "queue.add")).toHaveLength(1);
      expect(projected(throttled, back).index).toEqual([
        { key: "user-throttled:alice", member: JOB, score: null },
        { key: "site-queue:BNL:production:default", member: JOB, score: queueScore(100, 9_000) },
      ]);
    });

    it("binds to one pilot thread on dispatch, without touching the queue, and arms the sent watchdog", () => {
      const [sent, effects] = accept(jobMachine, activated(), dispatch);
      expect(sent.value).toBe("sent");
      expect(sent.context.pilot).toEqual({ pilotId: "p1", thread: "primary" });
      expect(emits(effects)).toEqual([]);
      expect(timers(effects)).toEqual([{ raise: "xstate.after.sentTimeout.job.sent", delayMs: 300_000 }]);
      expect(sent.can(dispatch)).toBe(false);
    });

    it("fails with a pilot error when the pilot never starts the job", () => {
      const [sent, effects] = accept(jobMachine, activated(), dispatch);
      const [failed] = fire(jobMachine, sent, timers(effects)[0]!);
      expect(failed.value).toBe("failed");
      expect(failed.context.error).toMatchObject({ class: "pilot", code: "sentTimeout" });
      expect(failed.context.timestamps.failed).toBe(3_000 + 300_000);
    });

    it("follows the pilot through starting and running, counted at its site each step, telling no one else", () => {
      const [sent] = accept(jobMachine, activated(), dispatch);
      const [starting, toStarting] = accept(jobMachine, sent, pilot("pilot.starting", 4_000));
      expect(starting.value).toBe("starting");
      expect(toStarting).toContainEqual({
        raise: "xstate.after.heartbeatTimeout.job.starting",
        delayMs: 600_000,
      });
      const [run, toRunning] = accept(jobMachine, starting, pilot("pilot.running", 5_000));
      expect(run.value).toBe("running");
      // Held by its pilot from dispatch until it ends; counted at its site in each state.
      expect(projected(activated(), sent).index).toEqual([
        { key: "site-queue:BNL:production:default", member: JOB, score: null },
        { key: "pilot-jobs:p1", member: JOB, score: 0 },
      ]);
      // The default share's running slots are its site's jobs on pilots: no counter of its own.
      expect(projected(activated(), sent).counters.map((c) => c.name)).not.toContain("shares:BNL:default");
      // A named share's job holds one of its share's running slots at its site from dispatch until it leaves its pilot.
      const inShare = (state: typeof sent) => ({ ...state, context: { ...state.context, share: "prod" } });
      expect(projected(inShare(activated()), inShare(sent)).counters).toContainEqual({
        name: "shares:BNL:prod",
        delta: 1,
      });
      expect(projected(inShare(sent), inShare(starting)).counters).toEqual(
        projected(sent, starting).counters,
      );
      // So the default share's running slots are counted by difference: the site's jobs on pilots less the named shares'.
      const counters = new Map([
        ["jobs:BNL:sent", 2],
        ["jobs:BNL:starting", 1],
        ["jobs:BNL:running", 7],
        ["jobs:BNL:activated", 5],
        ["shares:BNL:prod", 6],
      ]);
      const counter = (name: string) => counters.get(name) ?? 0;
      expect(shareRunningFrom(counter, "BNL", "default", ["default", "prod"])).toBe(4);
      expect(shareRunningFrom(counter, "BNL", "prod", ["default", "prod"])).toBe(6);
      expect(shareRunningFrom(counter, "BNL", "default", [])).toBe(10);
      expect(projected(sent, starting)).toEqual({
        index: [],
        counters: [
          { name: "jobs:BNL:starting", delta: 1 },
          { name: "jobs:BNL:sent", delta: -1 },
        ],
      });
      // The task runs from its creation: a job's start is no news to it.
      expect(eventTypesSent(toRunning)).toEqual([]);
      expect(projected(starting, run).counters).toEqual([
        { name: "jobs:BNL:running", delta: 1 },
        { name: "jobs:BNL:starting", delta: -1 },
      ]);
      expect(run.context.timestamps).toMatchObject({ sent: 3_000, starting: 4_000, running: 5_000 });
    });

    it("counts the watchdog from when a held heartbeat was heard, not from its late delivery", () => {
      const job = running();
      // Heard at 60 s, held by the node and delivered 450 s later: the watchdog is due 600 s after 60 s.
      const late = Object.assign(pilot("pilot.heartbeat", 60_000), { heldMs: 450_000 });
      const [beat, effects] = accept(jobMachine, job, late);
      expect(effects).toEqual([
        { cancel: "xstate.after.heartbeatTimeout.job.running" },
        { raise: "xstate.after.heartbeatTimeout.job.running", delayMs: 150_000 },
      ]);
      const [lost] = fire(jobMachine, beat, timers(effects)[0]!);
      expect(lost.context.timestamps.failed).toBe(660_000);
      // Held longer than the whole timeout: the watchdog is due at once.
      const overdueBeat = Object.assign(pilot("pilot.heartbeat", 60_000), { heldMs: 900_000 });
      const [, overdue] = accept(jobMachine, job, overdueBeat);
      expect(overdue).toContainEqual({ raise: "xstate.after.heartbeatTimeout.job.running", delayMs: 0 });
    });

    it("re-arms the heartbeat watchdog on each heartbeat without reporting a state change", () => {
      const job = running();
      const [beat, effects] = accept(jobMachine, job, pilot("pilot.heartbeat", 60_000));
      expect(beat.value).toBe("running");
      expect(effects).toEqual([
        { cancel: "xstate.after.heartbeatTimeout.job.running" },
        { raise: "xstate.after.heartbeatTimeout.job.running", delayMs: 600_000 },
      ]);
      expect(beat.context.timestamps.running).toBe(5_000);
      const [lost] = fire(jobMachine, beat, timers(effects)[0]!);
      expect(lost.value).toBe("failed");
      expect(lost.context.error).toMatchObject({ class: "lostHeartbeat", code: "heartbeatTimeout" });
      expect(lost.context.timestamps.failed).toBe(660_000);
    });

    it("takes a pilot's reports even when it skips a step", () => {
      const [sent] = accept(jobMachine, activated(), dispatch);
      expect(accept(jobMachine, sent, pilot("pilot.running", 4_000))[0].value).toBe("running");
      expect(accept(jobMachine, sent, endedOk)[0].value).toBe("holding");
      const [starting] = accept(jobMachine, sent, pilot("pilot.starting", 4_000));
      const [beat, rearm] = accept(jobMachine, starting, pilot("pilot.heartbeat", 5_000));
      expect(beat.value).toBe("starting");
      expect(timers(rearm)).toEqual([
        { raise: "xstate.after.heartbeatTimeout.job.starting", delayMs: 600_000 },
      ]);
      expect(accept(jobMachine, starting, { ...endedOk, exitCode: 2 })[0].value).toBe("failed");
    });

    it("ignores reports from another pilot or another attempt", () => {
      const job = running();
      const otherPilot: PilotReport = { ...pilot("pilot.heartbeat", 1), pilotId: "p2" };
      const otherAttempt: PilotReport = { ...pilot("pilot.heartbeat", 1), attempt: 2 };
      expect(job.can(otherPilot)).toBe(false);
      expect(job.can(otherAttempt)).toBe(false);
      expect(job.can({ ...endedOk, attempt: 2 })).toBe(false);
    });
  });

  describe("outputs", () => {
    it("registers its files in the site's sub-destination dataset while holding, then finishes", () => {
      const [holding, effects] = accept(jobMachine, running(), endedOk);
      expect(holding.value).toBe("holding");
      expect(holding.context.producedFiles).toEqual([outputFile, logFile]);
      expect(withoutSiteReports(effects)).toEqual([
        { cancel: "xstate.after.heartbeatTimeout.job.running" },
        {
          send: "dataset/mc.out.sub.BNL",
          event: {
            type: "create",
            input: { name: "mc.out.sub.BNL", state: "open", parent: "mc.out", atMs: 9_000 },
          },
        },
        {
          send: "dataset/mc.out.sub.BNL",
          event: {
            type: "files.add",
            files: [outputFile, logFile],
            site: "BNL",
            reply: { to: { kind: "job", id: JOB }, requestId: JOB },
            atMs: 9_000,
          },
        },
        { raise: "xstate.after.holdingTimeout.job.holding", delayMs: 3_600_000 },
      ]);
      expect(holding.can(pilot("pilot.running", 1))).toBe(false);
      expect(holding.can({ type: "close", reason: "too late" })).toBe(false);
      expect(
        holding.can({ type: "outputs.registered", requestId: "t-1-0.2", dataset: "mc.out", lfns: [] }),
      ).toBe(false);

      const [finished, end] = accept(jobMachine, holding, {
        type: "outputs.registered",
        requestId: JOB,
        dataset: "mc.out",
        lfns: ["out1", "log1"],
        atMs: 10_000,
      });
      expect(finished.value).toBe("finished");
      expect(finished.status).toBe("done");
      expect(sends(end, "task/t-1")).toEqual([endedReport(10_000, "finished", null, "BNL")]);
    });

    it("times out in holding when registration never comes back", () => {
      const [holding, effects] = accept(jobMachine, running(), endedOk);
      const [failed] = fire(jobMachine, holding, timers(effects)[0]!);
      expect(failed.context.error).toMatchObject({ class: "timeout", code: "holdingTimeout" });
    });

    it("transfers outputs to another destination through its own subscription", () => {
      const [holding] = accept(
        jobMachine,
        running({ outputs: { dataset: "mc.out", destination: "CERN" } }),
        endedOk,
      );
      const registered: JobEvent = {
        type: "outputs.registered",
        requestId: JOB,
        dataset: "mc.out",
        lfns: [],
      };
      const [transferring, effects] = accept(jobMachine, holding, registered);
      expect(transferring.value).toBe("transferring");
      expect(sends(effects, `subscription/out.${JOB}@CERN`)).toEqual([
        {
          send: `subscription/out.${JOB}@CERN`,
          event: {
            type: "create",
            input: {
              id: `out.${JOB}@CERN`,
              dataset: "mc.out",
              site: "CERN",
              files: [
                { ...outputFile, sourceSite: "BNL" },
                { ...logFile, sourceSite: "BNL" },
              ],
              requester: { kind: "job", id: JOB },
              purpose: "output",
              atMs: 9_000,
            },
          },
        },
      ]);
      expect(transferring.can({ type: "outputs.transferred", subscription: "out.other@CERN" })).toBe(false);
      const [finished] = accept(jobMachine, transferring, {
        type: "outputs.transferred",
        subscription: `out.${JOB}@CERN`,
      });
      expect(finished.value).toBe("finished");
      expectEnd(
        transferring,
        { type: "outputs.failed", subscription: `out.${JOB}@CERN`, reason: "destination full" },
        "failed",
        { class: "stageout", code: "outputs.failed", message: "destination full" },
      );
    });

    it("finishes at once when the payload wrote nothing to register", () => {
      const [finished] = accept(jobMachine, running(), { ...endedOk, outputs: [], log: null });
      expect(finished.value).toBe("finished");
    });

    it("leaves its site's live counts and its user's quota as it found them once final, and reports the outcome to the site", () => {
      const [created] = create();
      const events: JobEvent[] = [
        brokered("BNL"),
        dispatch,
        pilot("pilot.starting", 4_000),
        pilot("pilot.running", 5_000),
        pilot("pilot.heartbeat", 6_000),
        { ...endedOk, outputs: [], log: null },
      ];
      // The counts follow from each state (the kind's projections): every one passed through is taken off again.
      const sums = new Map<string, number>();
      const seen = new Set<string>();
      let previous = created;
      const all: Effect[] = [];
      for (const event of events) {
        const [next, effects] = accept(jobMachine, previous, event);
        all.push(...effects);
        const { counters } = projectionChanges(
          jobProjections.of(previous, JOB),
          jobProjections.of(next, JOB),
        );
        for (const { name, delta } of counters) {
          seen.add(name);
          sums.set(name, (sums.get(name) ?? 0) + delta);
        }
        previous = next;
      }
      expect(previous.value).toBe("finished");
      expect([...seen].sort()).toEqual([
        ...["activated", "running", "sent", "starting"].map((state) => `jobs:BNL:${state}`),
        "users:alice:active",
      ]);
      expect([...sums.values()].every((sum) => sum === 0)).toBe(true);
      expect(sends(all, "site/BNL").map((s) => s.event)).toEqual([
        expect.objectContaining({ type: "job.state", from: "running", to: "finished" }),
      ]);
    });
  });

  describe("failure and retry", () => {
    it("fails with the pilot's error and does not retry payload errors by default", () => {
      const [failed, effects] = accept(jobMachine, running(), {
        ...endedOk,
        exitCode: 65,
        errorMessage: "transformation crashed",
      });
      expect(failed.value).toBe("failed");
      expect(failed.context.error).toEqual({
        class: "payload",
        code: "65",
        message: "transformation crashed",
      });
      expect(eventTypesSent(effects)).toEqual(["site/BNL job.state", "task/t-1 job.ended"]);
      expect(sends(effects, "site/BNL")[0]?.event).toMatchObject({
        from: "running",
        to: "failed",
        errorClass: "payload",
      });
    });

    it("creates the next attempt elsewhere after a retryable error, with backoff, and tells the task", () => {
      const job = running({ retry: { backoffMs: 30_000 } });
      const [failed, effects] = accept(jobMachine, job, {
        ...endedOk,
        exitCode: 1,
        errorClass: "stagein",
        errorCode: 1099,
      });
      expect(failed.context.error).toMatchObject({ class: "stagein", code: "1099" });
      const [create] = sends(effects, "job/t-1-0.2");
      expect(create?.event).toMatchObject({
        type: "create",
        input: {
          taskId: "t-1",
          index: 0,
          attempt: 2,
          excludedSites: ["BNL"],
          startDelayMs: 30_000,
          systemFailures: 0,
          retry: { maxAttempts: 3, backoffMs: 30_000 },
          atMs: 9_000,
        },
      });
      expect(sends(effects, "task/t-1")).toEqual([
        {
          send: "task/t-1",
          event: {
            type: "job.retried",
            jobId: JOB,
            index: 0,
            attempt: 1,
            atMs: 9_000,
            nextJobId: "t-1-0.2",
            errorClass: "stagein",
            site: "BNL",
          },
        },
      ]);

      const nextInput = (create!.event as Extract<JobEvent, { type: "create" }>).input;
      const [pending, delayed] = initialTransition(jobMachine, nextInput);
      expect(pending.value).toBe("pending");
      expect(pending.context.jobId).toBe("t-1-0.2");
      const backoff = timers(effectsOf(delayed));
      expect(backoff).toEqual([{ raise: "xstate.after.retryBackoff.job.pending", delayMs: 30_000 }]);
      const [defined, asked] = fire(jobMachine, pending, backoff[0]!);
      expect(defined.value).toEqual({ defined: "brokering" });
      expect(defined.context.timestamps).toEqual({ pending: 9_000, defined: 39_000 });
      expect(emits(asked, "broker.request")[0]?.data).toMatchObject({ excludedSites: ["BNL"], attempt: 2 });
    });

    it("stops retrying after maxAttempts and reports the final failure", () => {
      const [failed, effects] = accept(jobMachine, running({ attempt: 3 }), {
        ...endedOk,
        attempt: 3,
        exitCode: 1,
        errorClass: "pilot",
      });
      expect(failed.value).toBe("failed");
      expect(eventTypesSent(effects)).toEqual(["site/BNL job.state", "task/t-1 job.ended"]);
    });

    it("does not count system errors against maxAttempts, but caps them on their own", () => {
      const systemFailure = { ...endedOk, attempt: 3, exitCode: 1, errorClass: "system" as const };
      const [retried, retryEffects] = accept(
        jobMachine,
        running({ attempt: 3, systemFailures: 1 }),
        systemFailure,
      );
      expect(retried.value).toBe("failed");
      expect(sends(retryEffects, "job/t-1-0.4")[0]?.event).toMatchObject({
        input: { attempt: 4, systemFailures: 2 },
      });

      const [, capped] = accept(jobMachine, running({ attempt: 3, systemFailures: 3 }), systemFailure);
      expect(eventTypesSent(capped)).toEqual(["site/BNL job.state", "task/t-1 job.ended"]);
    });

    it("keeps the failing site off the list when the policy says so", () => {
      const job = running({ retry: { excludeFailingSite: false }, excludedSites: ["CERN"] });
      const [, effects] = accept(jobMachine, job, { ...endedOk, exitCode: 1, errorClass: "stageout" });
      expect(sends(effects, "job/t-1-0.2")[0]?.event).toMatchObject({ input: { excludedSites: ["CERN"] } });
    });
  });

  describe("kill and close", () => {
    const filesToMove = [{ lfn: "in1", sizeBytes: 1, checksum: "x", sourceSite: "CERN" }];
    const toDestination = { outputs: { dataset: "mc.out", destination: "CERN" } };
    /** One way to reach each live state. */
    const reach: Record<string, () => SnapshotFrom<typeof jobMachine>> = {
      pending: () => create({ attempt: 2, startDelayMs: 1_000 })[0],
      defined: () => create()[0],
      waiting: () => accept(jobMachine, create()[0], brokered("BNL", { waitingFor: ["in1"] }))[0],
      assigned: () => accept(jobMachine, create()[0], brokered("BNL", { filesToMove }))[0],
      activated: () => activated(),
      throttled: () => accept(jobMachine, activated(), { type: "throttle" })[0],
      sent: () => accept(jobMachine, activated(), dispatch)[0],
      starting: () => acceptAll(jobMachine, activated(), [dispatch, pilot("pilot.starting", 4_000)])[0],
      running: () => running(),
      holding: () => accept(jobMachine, running(), endedOk)[0],
      transferring: () =>
        acceptAll(jobMachine, running(toDestination), [
          endedOk,
          { type: "outputs.registered", requestId: JOB, dataset: "mc.out", lfns: [] },
        ])[0],
    };
    // JOB_STATES lists the live states in order: everything before `running` can still be closed.
    const closable = new Set<string>(JOB_STATES.slice(0, JOB_STATES.indexOf("running")));

    for (const [state, build] of Object.entries(reach)) {
      it(`kills a job in ${state}${closable.has(state) ? " and closes it" : ", which is too late to close"}`, () => {
        const job = build();
        expect(jobStateOf(job)).toBe(state);
        const [cancelled] = accept(jobMachine, job, { type: "kill", by: "ops", reason: "cleanup" });
        expect(cancelled.value).toBe("cancelled");
        const close: JobEvent = { type: "close", reason: "expired" };
        if (!closable.has(state)) {
          expect(job.can(close)).toBe(false);
          return;
        }
        const [closed] = accept(jobMachine, job, close);
        expect(closed.value).toBe("closed");
      });
    }

    it("takes an activated job out of the queue", () => {
      const [cancelled, effects] = expectEnd(
        activated(),
        { type: "kill", by: "alice", reason: "typo" },
        "cancelled",
        {
          class: "killed",
          code: "killed",
          message: "killed by alice: typo",
        },
      );
      expect(emits(effects)).toEqual([
        {
          emit: "job.final",
          data: { jobId: JOB, user: "alice", site: "BNL", outcome: "cancelled", from: "activated" },
        },
      ]);
      expect(eventTypesSent(effects)).toEqual(["site/BNL job.state", "task/t-1 job.ended"]);
      expect(projected(activated(), cancelled)).toEqual({
        index: [{ key: "site-queue:BNL:production:default", member: JOB, score: null }],
        counters: [
          { name: "jobs:BNL:activated", delta: -1 },
          { name: "users:alice:active", delta: -1 },
        ],
      });
    });

    it("kills a running job's payload through its pilot", () => {
      const [, effects] = accept(jobMachine, running(), { type: "kill", by: "ops", reason: "bad release" });
      expect(emits(effects)).toEqual([
        { emit: "pilot.kill", data: { pilotId: "p1", jobId: JOB, attempt: 1, reason: "bad release" } },
        {
          emit: "job.final",
          data: { jobId: JOB, user: "alice", site: "BNL", outcome: "cancelled", from: "running" },
        },
      ]);
      expect(sends(effects, "task/t-1")[0]?.event).toMatchObject({
        outcome: "cancelled",
        errorClass: "killed",
      });
    });

    it("cancels the dispatch subscription of an assigned job", () => {
      const [created] = create();
      const [job] = accept(
        jobMachine,
        created,
        brokered("BNL", { filesToMove: [{ lfn: "in1", sizeBytes: 1, checksum: "x", sourceSite: "CERN" }] }),
      );
      const [, effects] = accept(jobMachine, job, { type: "close", reason: "reassigned", atMs: 5_000 });
      expect(sends(effects, `subscription/dis.${JOB}@BNL`)).toEqual([
        { send: `subscription/dis.${JOB}@BNL`, event: { type: "cancel", reason: "reassigned", atMs: 5_000 } },
      ]);
    });

    it("closes a job before it runs, never after", () => {
      const [sent] = accept(jobMachine, activated(), dispatch);
      const [closed, effects] = accept(jobMachine, sent, { type: "close", reason: "task done" });
      expect(closed.value).toBe("closed");
      expect(closed.context.error).toEqual({ class: "system", code: "closed", message: "task done" });
      expect(emits(effects, "pilot.kill")).toHaveLength(1);
      expect(sends(effects, "task/t-1")[0]?.event).toMatchObject({ outcome: "closed" });
      expect(running().can({ type: "close", reason: "x" })).toBe(false);
    });

    it("accepts nothing once final", () => {
      const [finished] = accept(jobMachine, running(), { ...endedOk, outputs: [], log: null });
      const [cancelled] = accept(jobMachine, activated(), { type: "kill", by: "a", reason: "b" });
      for (const final of [finished, cancelled]) {
        expect(final.status).toBe("done");
        expect(final.can({ type: "kill", by: "a", reason: "again" })).toBe(false);
        expect(final.can(pilot("pilot.heartbeat", 1))).toBe(false);
      }
    });
  });

  it("runs through the runtime's step() and restores from its stored bytes, timers included", () => {
    const live = driveThroughRuntime(jobKind, `job/${JOB}`, [
      { type: "create", input: baseInput },
      brokered("BNL"),
      dispatch,
      pilot("pilot.starting", 4_000),
      pilot("pilot.running", 5_000),
      pilot("pilot.heartbeat", 6_000),
      { type: "xstate.after.heartbeatTimeout.job.running" },
    ]);
    expect(live.state.value).toBe("failed");
    expect(live.state.status).toBe("done");
    expect(live.state.context.error).toMatchObject({ class: "lostHeartbeat" });
  });
});

describe("job reassignment", () => {
  const reassign = (site: string | null = null): JobEvent => ({
    type: "reassign",
    by: "op",
    reason: "site is slow",
    site,
    atMs: 5_000,
  });

  it("closes an activated attempt at the operator's word and brokers the next at the site named", () => {
    const job = activated({ excludedSites: ["CERN"] });
    const [closed, effects] = expectEnd(job, reassign("CERN"), "closed", {
      class: "system",
      code: "reassigned",
      message: "reassigned by op: site is slow",
    });
    expect(closed.context.reassignment).toEqual({ by: "op", reason: "site is slow", site: "CERN" });
    const [next] = sends(effects, "job/t-1-0.2");
    expect(next?.event).toMatchObject({
      type: "create",
      input: { attempt: 2, requestedSite: "CERN", excludedSites: [], reassignments: 1, startDelayMs: 0 },
    });
    // The task hears of a new attempt, not of an end: the logical job lives on.
    expect(eventTypesSent(sends(effects, "task/t-1"))).toEqual(["task/t-1 job.retried"]);
    // The site is told the job closed, as reassigned: it does not judge itself on it.
    expect(sends(effects, "site/BNL")[0]?.event).toMatchObject({ to: "closed", reassigned: true });
  });

  /** The grid's reassignment of a job that waited too long, naming the stay it judged. */
  const stale = (state: "activated" | "assigned", sinceSec: number): JobEvent => ({
    type: "reassign",
    by: "auto",
    reason: `waited ${state} at BNL longer than its limit of 60000 ms`,
    site: null,
    waited: { state, sinceSec },
    atMs: 62_000,
  });

  it("is reassigned by the grid when it waited activated too long, away from that site", () => {
    const job = activated();
    const [closed, effects] = accept(jobMachine, job, stale("activated", 2));
    expect(closed.value).toBe("closed");
    expect(closed.context.reassignment).toMatchObject({ by: "auto", site: null });
    expect(closed.context.error?.message).toBe(
      "reassigned by auto: waited activated at BNL longer than its limit of 60000 ms",
    );
    expect(closed.context.timestamps.closed).toBe(62_000);
    expect(sends(effects, "job/t-1-0.2")[0]?.event).toMatchObject({
      input: { attempt: 2, excludedSites: ["BNL"], requestedSite: null, reassignments: 1 },
    });
  });

  it("refuses the grid's reassignment once it left the stay judged: dispatched, or activated again since", () => {
    const job = activated();
    expect(job.can(stale("assigned", 2))).toBe(false);
    expect(job.can(stale("activated", 1))).toBe(false);
    const [sent] = accept(jobMachine, job, dispatch);
    expect(sent.can(stale("activated", 2))).toBe(false);
    // An operator may still take back a job sent to a pilot that has not started it.
    expect(sent.can(reassign())).toBe(true);
  });

  it("arms no timer for its site's limit: entering and leaving the queue commits no timer", () => {
    const [created] = create();
    const [job, entered] = accept(jobMachine, created, brokered("BNL"));
    expect(timers(entered)).toEqual([]);
    const [, left] = accept(jobMachine, job, dispatch);
    // Leaving cancels nothing; the only timer is the sent state's own watchdog.
    expect(left.filter((e) => "cancel" in e || "raise" in e)).toEqual([
      { raise: "xstate.after.sentTimeout.job.sent", delayMs: 300_000 },
    ]);
  });

  it("cancels the dispatch subscription of an assigned job it reassigns", () => {
    const [created] = create();
    const files = [{ lfn: "in2", sizeBytes: 100, checksum: "ad:in2", sourceSite: "CERN" }];
    const [assigned] = accept(jobMachine, created, brokered("BNL", { filesToMove: files }));
    const [, effects] = accept(jobMachine, assigned, reassign());
    expect(sends(effects, `subscription/dis.${JOB}@BNL`)[0]?.event).toMatchObject({ type: "cancel" });
  });

  it("is reassigned by the grid when its inputs take longer to arrive than the site allows", () => {
    const [created] = create();
    const files = [{ lfn: "in2", sizeBytes: 100, checksum: "ad:in2", sourceSite: "CERN" }];
    const [assigned] = accept(jobMachine, created, brokered("BNL", { filesToMove: files }));
    expect(assigned.can(stale("activated", 2))).toBe(false);
    const [closed, effects] = accept(jobMachine, assigned, stale("assigned", 2));
    expect(closed.context.error?.message).toMatch(/waited assigned at BNL longer than its limit of 60000 ms/);
    expect(sends(effects, `subscription/dis.${JOB}@BNL`)[0]?.event).toMatchObject({ type: "cancel" });
    expect(sends(effects, "job/t-1-0.2")).toHaveLength(1);
  });

  it("is refused once the job runs", () => {
    expect(running().can(reassign())).toBe(false);
  });

  it("uses up none of the user's attempts", () => {
    // Attempt 3 after two reassignments is the user's first: a retryable failure makes attempt 4.
    const job = running({ attempt: 3, reassignments: 2 });
    const [, effects] = accept(jobMachine, job, {
      ...endedOk,
      attempt: 3,
      exitCode: 1,
      errorClass: "stagein",
    });
    expect(sends(effects, "job/t-1-0.4")[0]?.event).toMatchObject({
      input: { attempt: 4, reassignments: 2 },
    });
  });
});

describe("job snapshots of older machine versions", () => {
  it("versions 1 to 3 are lifted without countedAt: counts follow from the state, and shards are rebuilt", () => {
    const job = running();
    const v1 = migrateJob(1, { value: job.value, context: job.context, status: "active" });
    expect(v1.context).toEqual(job.context);
    const v3Context = { ...job.context, countedAt: { site: "BNL", state: "running" } };
    expect(migrateJob(3, { value: job.value, context: v3Context, status: "active" }).context).toEqual(
      job.context,
    );
  });

  it("version 2 drops the brokerage decision, which the brokered history entry keeps, and keeps the tries", () => {
    const job = running();
    const v2Context = { ...job.context, brokerage: { decision: { chosen: "BNL", candidates: 3 }, tries: 2 } };
    const lifted = migrateJob(2, { value: job.value, context: v2Context, status: "active" });
    expect(lifted.context).toEqual({ ...job.context, brokerage: { tries: 2 } });
    expect(migrateJob(7, { value: job.value, context: job.context, status: "active" }).context).toBe(
      job.context,
    );
  });

  it("version 4 is lifted as a job never reassigned, not a test job", () => {
    const job = activated();
    const { test: _t, reassignments: _r, reassignment: _a, ...v4 } = job.context;
    const lifted = migrateJob(4, { value: job.value, context: v4, status: "active" });
    expect(lifted.context).toEqual(job.context);
  });

  it("version 6 is lifted as a job of the default share that keeps its own priority", () => {
    const job = activated();
    const { share: _s, currentPriority: _p, ...v6 } = job.context;
    const lifted = migrateJob(6, { value: job.value, context: v6, status: "active" });
    expect(lifted.context).toEqual({ ...job.context, share: null, currentPriority: null });
    expect(jobProjections.of({ ...job, context: lifted.context } as never, job.context.jobId).index).toEqual([
      expect.objectContaining({ key: "site-queue:BNL:production:default" }),
    ]);
  });

  it("version 7 drops the state and the state before it, and its end still reports where it came from", () => {
    const job = running();
    const v7 = { ...job.context, state: "running", previousState: "starting" };
    const lifted = migrateJob(7, { value: job.value, context: v7, status: "active" });
    expect(lifted.context).toEqual(job.context);
    expect(migrateJob(8, { value: job.value, context: job.context, status: "active" }).context).toBe(
      job.context,
    );
    // Restored from the stored bytes of a version 7 job, through the runtime's own step.
    const actor = `job/${JOB}` as const;
    const bytes = encodeSnapshotRecord({
      k: "job",
      mv: 7,
      s: { value: job.value, context: v7, status: "active" },
    });
    const current = restore(jobKind, actor, 5, bytes);
    expect(current.state.context).not.toHaveProperty("state");
    expect(current.state.context).not.toHaveProperty("previousState");
    const kill: JobEvent = { type: "kill", by: "ops", reason: "cleanup", atMs: 9_000 };
    const result = step({
      definition: jobKind,
      actor,
      current,
      event: kill,
      eventId: "k",
      cause: "test",
      nowMs: 9_000,
    });
    expect(result.refusal).toBeNull();
    expect(jobStateOf(result.next!.state)).toBe("cancelled");
    expect(result.effects.map((e) => [e.id, e.t === "send" ? `${e.to} ${e.e.type}` : e.effect])).toEqual([
      ["k:c1", "pilot.kill"],
      ["k:c2", "site/BNL job.state"],
      ["k:c3", "job.final"],
      [expect.stringMatching(/^k:e\d+$/), "task/t-1 job.ended"],
    ]);
    expect(result.effects[1]).toMatchObject({ e: { from: "running", to: "cancelled", atMs: 9_000 } });
    expect(result.effects[2]).toMatchObject({ data: { from: "running", outcome: "cancelled" } });
  });

  it("version 5 drops the limit it kept, and the limit's timer it armed is refused when it fires", () => {
    const job = activated();
    const v5 = { ...job.context, reassignAfterMs: DEFAULT_REASSIGN_AFTER_MS };
    const lifted = migrateJob(5, { value: job.value, context: v5, status: "active" });
    expect(lifted.context).toEqual(job.context);
    // The sweep of stale waits reassigns it now; the old timer's event changes nothing.
    expect(job.can({ type: "xstate.after.reassignAfter.job.activated" } as never)).toBe(false);
  });
});
