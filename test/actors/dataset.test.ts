import { describe, expect, it } from "vitest";
import { initialTransition } from "xstate";
import { completeReplicaSites } from "../../src/actors/dataset/files.js";
import {
  type DatasetEvent,
  type DatasetInput,
  datasetKind,
  datasetMachine,
} from "../../src/actors/dataset/index.js";
import { accept, acceptAll, driveThroughRuntime, effectsOf, sends } from "./helpers.js";

const file = (lfn: string, sizeBytes = 100, checksum = `ad:${lfn}`) => ({ lfn, sizeBytes, checksum });
const reply = { to: { kind: "job", id: "t-1-0.1" }, requestId: "t-1-0.1" };

function create(input: Partial<DatasetInput> = {}) {
  const [snapshot, actions] = initialTransition(datasetMachine, { name: "mc.out", atMs: 1_000, ...input });
  return { snapshot, effects: effectsOf(actions) };
}

describe("dataset", () => {
  it("starts open and empty, with no effects", () => {
    const { snapshot, effects } = create();
    expect(snapshot.value).toBe("open");
    expect(snapshot.context).toMatchObject({
      name: "mc.out",
      fileCount: 0,
      totalBytes: 0,
      timestamps: { open: 1_000 },
    });
    expect(effects).toEqual([]);
  });

  it("is born frozen when asked, holding its files and their source replicas (dispatch datasets)", () => {
    const { snapshot } = create({
      name: "dis.t-1-0.1",
      state: "frozen",
      files: [file("a"), file("b")],
      replicas: { CERN: ["a", "b"], BNL: ["a", "unknown"] },
    });
    expect(snapshot.value).toBe("frozen");
    expect(snapshot.context.fileCount).toBe(2);
    expect(snapshot.context.replicas).toEqual({ CERN: ["a", "b"], BNL: ["a"] });
    expect(completeReplicaSites(snapshot.context)).toEqual(["CERN"]);
  });

  it("adds files with their site replica and answers the registrant; re-adding is a no-op that answers again", () => {
    const { snapshot } = create();
    const add: DatasetEvent = {
      type: "files.add",
      files: [file("a", 10), file("b", 20)],
      site: "BNL",
      reply,
      atMs: 2_000,
    };
    const [once, effects] = accept(datasetMachine, snapshot, add);
    expect(once.context).toMatchObject({ fileCount: 2, totalBytes: 30, replicas: { BNL: ["a", "b"] } });
    expect(sends(effects)).toEqual([
      {
        send: "job/t-1-0.1",
        event: {
          type: "outputs.registered",
          requestId: "t-1-0.1",
          dataset: "mc.out",
          lfns: ["a", "b"],
          atMs: 2_000,
        },
      },
    ]);
    const [twice, again] = accept(datasetMachine, once, add);
    expect(twice.context.fileCount).toBe(2);
    expect(twice.context.totalBytes).toBe(30);
    expect(sends(again)[0]?.event.type).toBe("outputs.registered");
  });

  it("refuses a file that would give an lfn a second content", () => {
    const { snapshot } = create();
    const [withA] = accept(datasetMachine, snapshot, { type: "files.add", files: [file("a")] });
    expect(withA.can({ type: "files.add", files: [file("a", 100, "ad:other")] })).toBe(false);
    expect(withA.can({ type: "files.add", files: [file("b", 1, "x"), file("b", 1, "y")] })).toBe(false);
  });

  it("as a sub-destination, forwards registrations to its parent, which answers the registrant", () => {
    const { snapshot } = create({ name: "mc.out.sub.BNL", parent: "mc.out" });
    const add: DatasetEvent = { type: "files.add", files: [file("a")], site: "BNL", reply, atMs: 2_000 };
    const [next, effects] = accept(datasetMachine, snapshot, add);
    expect(next.context.fileCount).toBe(1);
    expect(sends(effects)).toEqual([{ send: "dataset/mc.out", event: add }]);
  });

  it("refuses files once closed or frozen, and freezes from closed", () => {
    const { snapshot } = create();
    const add: DatasetEvent = { type: "files.add", files: [file("a")] };
    const [closed] = accept(datasetMachine, snapshot, { type: "close", atMs: 3_000 });
    expect(closed.value).toBe("closed");
    expect(closed.can(add)).toBe(false);
    expect(closed.can({ type: "close" })).toBe(false);
    const [frozen] = accept(datasetMachine, closed, { type: "freeze", atMs: 4_000 });
    expect(frozen.value).toBe("frozen");
    expect(frozen.context.timestamps).toEqual({ open: 1_000, closed: 3_000, frozen: 4_000 });
    expect(frozen.can(add)).toBe(false);
    expect(frozen.can({ type: "freeze" })).toBe(false);
  });

  it("tells watchers at once about files it has, later about files added, and at closing about the rest", () => {
    const { snapshot } = create({ files: [file("a")] });
    const [watched, first] = accept(datasetMachine, snapshot, {
      type: "watch",
      jobId: "j1",
      lfns: ["a", "b", "c"],
    });
    expect(sends(first)).toEqual([
      { send: "job/j1", event: { type: "input.available", dataset: "mc.out", lfns: ["a"], atMs: 1_000 } },
    ]);
    expect(watched.context.watchers).toEqual({ b: ["j1"], c: ["j1"] });

    const [withB, second] = accept(datasetMachine, watched, {
      type: "files.add",
      files: [file("b")],
      atMs: 5_000,
    });
    expect(sends(second)).toEqual([
      { send: "job/j1", event: { type: "input.available", dataset: "mc.out", lfns: ["b"], atMs: 5_000 } },
    ]);
    expect(withB.context.watchers).toEqual({ c: ["j1"] });

    const [frozen, third] = accept(datasetMachine, withB, { type: "freeze", atMs: 6_000 });
    expect(sends(third)).toEqual([
      { send: "job/j1", event: { type: "input.missing", dataset: "mc.out", lfns: ["c"], atMs: 6_000 } },
    ]);
    expect(frozen.context.watchers).toEqual({});

    const [, late] = accept(datasetMachine, frozen, { type: "watch", jobId: "j2", lfns: ["c"] });
    expect(sends(late)[0]?.event).toMatchObject({ type: "input.missing", lfns: ["c"] });
  });

  it("records replicas of known files in any state and refuses unknown ones", () => {
    const { snapshot } = create({ files: [file("a"), file("b")], state: "frozen" });
    const [partial] = accept(datasetMachine, snapshot, { type: "replica.add", site: "BNL", lfns: ["a"] });
    expect(completeReplicaSites(partial.context)).toEqual([]);
    const [complete] = accept(datasetMachine, partial, {
      type: "replica.add",
      site: "BNL",
      lfns: ["b", "a"],
    });
    expect(complete.context.replicas).toEqual({ BNL: ["a", "b"] });
    expect(completeReplicaSites(complete.context)).toEqual(["BNL"]);
    expect(complete.can({ type: "replica.add", site: "BNL", lfns: ["zz"] })).toBe(false);
  });

  it("has no final state: a frozen dataset still gains replicas", () => {
    const { snapshot } = create({ state: "frozen", files: [file("a")] });
    const [next] = acceptAll(datasetMachine, snapshot, [{ type: "replica.add", site: "CERN", lfns: ["a"] }]);
    expect(next.status).toBe("active");
  });

  it("runs through the runtime's step() and restores from its stored bytes", () => {
    const live = driveThroughRuntime(datasetKind, "dataset/mc.out", [
      { type: "create", input: { name: "mc.out", atMs: 1_000 } },
      { type: "watch", jobId: "j1", lfns: ["a"] },
      { type: "files.add", files: [file("a")], site: "BNL", reply },
      { type: "replica.add", site: "CERN", lfns: ["a"] },
      { type: "freeze" },
    ]);
    expect(live.state.value).toBe("frozen");
    expect(live.version).toBe(5);
  });
});
