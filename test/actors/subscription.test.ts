import { describe, expect, it } from "vitest";
import { initialTransition } from "xstate";
import {
  type SubscriptionInput,
  subscriptionKind,
  subscriptionMachine,
} from "../../src/actors/subscription/index.js";
import { accept, acceptAll, driveThroughRuntime, effectsOf, emits, sends } from "./helpers.js";

const file = (lfn: string, sizeBytes = 100) => ({
  lfn,
  sizeBytes,
  checksum: `ad:${lfn}`,
  sourceSite: "CERN",
});
const job = { kind: "job", id: "t-1-0.1" };

function create(input: Partial<SubscriptionInput> = {}) {
  const [snapshot, actions] = initialTransition(subscriptionMachine, {
    id: "dis.t-1-0.1@BNL",
    dataset: "dis.t-1-0.1",
    site: "BNL",
    files: [file("a", 10), file("b", 30)],
    requester: job,
    purpose: "dispatch",
    atMs: 1_000,
    ...input,
  });
  return { snapshot, effects: effectsOf(actions) };
}

describe("subscription", () => {
  it("asks the transfer agent for every file on creation", () => {
    const { snapshot, effects } = create();
    expect(snapshot.value).toBe("requested");
    expect(snapshot.context.progress).toEqual({ files: 2, filesDone: 0, bytes: 40, bytesDone: 0 });
    expect(effects).toEqual([
      {
        emit: "transfer.start",
        data: {
          subscriptionId: "dis.t-1-0.1@BNL",
          destSite: "BNL",
          dataset: "dis.t-1-0.1",
          files: [
            { lfn: "a", sizeBytes: 10, checksum: "ad:a", sourceSite: "CERN" },
            { lfn: "b", sizeBytes: 30, checksum: "ad:b", sourceSite: "CERN" },
          ],
        },
      },
    ]);
  });

  it("defaults its id to <dataset>@<site>", () => {
    const { snapshot } = create({ id: undefined, dataset: "mc.in", purpose: "replication", requester: null });
    expect(snapshot.context.id).toBe("mc.in@BNL");
  });

  it("tracks progress per file and, when all are there, records the replica and readies the job", () => {
    const { snapshot } = create();
    const [started] = accept(subscriptionMachine, snapshot, { type: "transfer.started", atMs: 1_500 });
    expect(started.value).toBe("transferring");
    const [half, none] = accept(subscriptionMachine, started, { type: "file.done", lfn: "a", atMs: 2_000 });
    expect(half.value).toBe("transferring");
    expect(half.context.progress).toEqual({ files: 2, filesDone: 1, bytes: 40, bytesDone: 10 });
    expect(half.context.files.a?.status).toBe("done");
    expect(none).toEqual([]);
    expect(half.can({ type: "file.done", lfn: "a" })).toBe(false);
    expect(half.can({ type: "file.done", lfn: "nope" })).toBe(false);

    const [done, effects] = accept(subscriptionMachine, half, { type: "file.done", lfn: "b", atMs: 3_000 });
    expect(done.value).toBe("done");
    expect(done.status).toBe("done");
    expect(done.context.timestamps).toEqual({ requested: 1_000, transferring: 1_500, done: 3_000 });
    expect(sends(effects)).toEqual([
      {
        send: "dataset/dis.t-1-0.1",
        event: { type: "replica.add", site: "BNL", lfns: ["a", "b"], atMs: 3_000 },
      },
      { send: "job/t-1-0.1", event: { type: "inputs.ready", subscription: "dis.t-1-0.1@BNL", atMs: 3_000 } },
    ]);
  });

  it("moves to transferring on the first file report even without a start notice", () => {
    const { snapshot } = create();
    const [next] = accept(subscriptionMachine, snapshot, { type: "file.done", lfn: "a" });
    expect(next.value).toBe("transferring");
  });

  it("retries a failed file until its attempts run out, then fails and tells the requester why", () => {
    const { snapshot } = create({ maxFileAttempts: 2 });
    const [retried, retry] = accept(subscriptionMachine, snapshot, {
      type: "file.failed",
      lfn: "a",
      reason: "checksum mismatch",
    });
    expect(retried.value).toBe("transferring");
    expect(retried.context.files.a).toMatchObject({
      status: "pending",
      attempts: 2,
      lastError: "checksum mismatch",
    });
    expect(emits(retry, "transfer.start")).toEqual([
      {
        emit: "transfer.start",
        data: {
          subscriptionId: "dis.t-1-0.1@BNL",
          destSite: "BNL",
          dataset: "dis.t-1-0.1",
          files: [{ lfn: "a", sizeBytes: 10, checksum: "ad:a", sourceSite: "CERN" }],
        },
      },
    ]);

    const [failed, effects] = accept(subscriptionMachine, retried, {
      type: "file.failed",
      lfn: "a",
      reason: "source lost",
      atMs: 9_000,
    });
    expect(failed.value).toBe("failed");
    expect(failed.status).toBe("done");
    expect(failed.context.failure).toEqual({ lfn: "a", reason: "source lost" });
    expect(effects).toEqual([
      { emit: "transfer.cancel", data: { subscriptionId: "dis.t-1-0.1@BNL" } },
      {
        send: "job/t-1-0.1",
        event: {
          type: "inputs.failed",
          subscription: "dis.t-1-0.1@BNL",
          reason: "a: source lost",
          atMs: 9_000,
        },
      },
    ]);
  });

  it("by default takes the agent's file.failed as final: the agent has already retried", () => {
    const { snapshot } = create();
    const [failed] = accept(subscriptionMachine, snapshot, {
      type: "file.failed",
      lfn: "b",
      reason: "gave up",
    });
    expect(failed.value).toBe("failed");
  });

  it("answers an output transfer's job with outputs.transferred", () => {
    const { snapshot } = create({
      id: "out.t-1-0.1@CERN",
      dataset: "mc.out",
      site: "CERN",
      purpose: "output",
    });
    const [, effects] = acceptAll(subscriptionMachine, snapshot, [
      { type: "file.done", lfn: "a" },
      { type: "file.done", lfn: "b" },
    ]);
    expect(sends(effects, "job/t-1-0.1")[0]?.event).toEqual({
      type: "outputs.transferred",
      subscription: "out.t-1-0.1@CERN",
      atMs: 1_000,
    });
  });

  it("is done at once when there is nothing to move", () => {
    const { snapshot, effects } = create({ files: [] });
    expect(snapshot.value).toBe("done");
    expect(snapshot.status).toBe("done");
    expect(sends(effects)).toEqual([
      { send: "job/t-1-0.1", event: { type: "inputs.ready", subscription: "dis.t-1-0.1@BNL", atMs: 1_000 } },
    ]);
  });

  it("can be cancelled while live and stops its transfers; final states accept nothing", () => {
    const { snapshot } = create();
    const [cancelled, effects] = accept(subscriptionMachine, snapshot, {
      type: "cancel",
      reason: "job killed",
    });
    expect(cancelled.value).toBe("cancelled");
    expect(cancelled.status).toBe("done");
    expect(cancelled.context.cancelReason).toBe("job killed");
    expect(effects).toEqual([{ emit: "transfer.cancel", data: { subscriptionId: "dis.t-1-0.1@BNL" } }]);
    expect(cancelled.can({ type: "file.done", lfn: "a" })).toBe(false);
    expect(cancelled.can({ type: "cancel", reason: "again" })).toBe(false);
  });

  it("runs through the runtime's step() and restores from its stored bytes", () => {
    const live = driveThroughRuntime(subscriptionKind, "subscription/dis.t-1-0.1@BNL", [
      {
        type: "create",
        input: {
          id: "dis.t-1-0.1@BNL",
          dataset: "dis.t-1-0.1",
          site: "BNL",
          files: [file("a")],
          requester: job,
          maxFileAttempts: 2,
        },
      },
      { type: "transfer.started" },
      { type: "file.failed", lfn: "a", reason: "timeout" },
      { type: "file.done", lfn: "a" },
    ]);
    expect(live.state.value).toBe("done");
  });
});
