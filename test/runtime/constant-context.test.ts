import { describe, expect, it } from "vitest";
import { assign, setup } from "xstate";
import { decode } from "../../src/protocol/codec.js";
import { type KindDefinition, KindRegistry } from "../../src/runtime/kinds.js";
import { decodeSnapshotRecord } from "../../src/runtime/records.js";
import {
  encodeSnapshot,
  encodeSnapshotParts,
  type LiveActor,
  restore,
  step,
} from "../../src/runtime/step.js";

/**
 * A kind's `constantContext` fields are stored once beside the snapshot: these
 * pin that the split loses nothing, that a transition replacing one of them has
 * them written again, and that full snapshots (older ones, imports) still load.
 */
const machine = setup({
  types: {
    context: {} as { spec: { cores: number }; owner: string; n: number },
    input: {} as { spec: { cores: number }; owner: string },
    events: {} as { type: "create"; input: unknown } | { type: "inc" } | { type: "respec"; cores: number },
  },
}).createMachine({
  id: "probe",
  initial: "on",
  context: ({ input }) => ({ spec: input.spec, owner: input.owner, n: 0 }),
  states: {
    on: {
      on: {
        inc: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        respec: { actions: assign({ spec: ({ event }) => ({ cores: event.cores }) }) },
      },
    },
  },
});
const definition: KindDefinition = new KindRegistry()
  .register({ kind: "probe", machine, version: 1, constantContext: ["spec", "owner"] })
  .get("probe");

function apply(current: LiveActor | null, event: { type: string; [k: string]: unknown }): LiveActor {
  const result = step({
    definition,
    actor: "probe/1",
    current,
    event,
    eventId: `e-${event.type}`,
    cause: "test",
    nowMs: 1,
  });
  if (result.refusal || !result.next) throw result.refusal ?? new Error("no next state");
  return result.next;
}

const created = () => apply(null, { type: "create", input: { spec: { cores: 8 }, owner: "alice" } });

describe("constant context fields", () => {
  it("leaves them out of the snapshot, stores them with the first commit, and restores the whole context", () => {
    const live = created();
    const parts = encodeSnapshotParts(definition, live);
    expect(parts.constants).not.toBeNull();
    expect(decodeSnapshotRecord(parts.snapshot).s.context).toEqual({ n: 0 });
    expect(decode(parts.constants!)).toEqual({ spec: { cores: 8 }, owner: "alice" });

    const restored = restore(definition, "probe/1", 1, parts.snapshot, parts.constants);
    expect(restored.state.context).toEqual({ spec: { cores: 8 }, owner: "alice", n: 0 });
  });

  it("writes no constants for a transition that keeps them, before and after a restore", () => {
    const live = created();
    const first = encodeSnapshotParts(definition, live);
    expect(encodeSnapshotParts(definition, apply(live, { type: "inc" })).constants).toBeNull();

    const restored = restore(definition, "probe/1", 1, first.snapshot, first.constants);
    const next = apply(restored, { type: "inc" });
    expect(encodeSnapshotParts(definition, next).constants).toBeNull();
    expect(next.state.context.n).toBe(1);
  });

  it("writes them again when a transition replaces one", () => {
    const live = created();
    encodeSnapshotParts(definition, live);
    const respecced = apply(live, { type: "respec", cores: 16 });
    const parts = encodeSnapshotParts(definition, respecced);
    expect(decode(parts.constants!)).toEqual({ spec: { cores: 16 }, owner: "alice" });
    const restored = restore(definition, "probe/1", 2, parts.snapshot, parts.constants);
    expect(restored.state.context.spec).toEqual({ cores: 16 });
  });

  it("loads a whole snapshot (written before the split, or imported) and stores its constants on the next commit", () => {
    const whole = encodeSnapshot(definition, created().state);
    const restored = restore(definition, "probe/1", 1, whole);
    expect(restored.state.context).toEqual({ spec: { cores: 8 }, owner: "alice", n: 0 });
    expect(restored.constants).toBeNull();
    const parts = encodeSnapshotParts(definition, apply(restored, { type: "inc" }));
    expect(decode(parts.constants!)).toEqual({ spec: { cores: 8 }, owner: "alice" });
  });

  it("lets a whole snapshot win over stale constants beside it, and writes its own", () => {
    const oldParts = encodeSnapshotParts(definition, created());
    const imported = apply(created(), { type: "respec", cores: 2 });
    const restored = restore(
      definition,
      "probe/1",
      2,
      encodeSnapshot(definition, imported.state),
      oldParts.constants,
    );
    expect(restored.state.context.spec).toEqual({ cores: 2 });
    const parts = encodeSnapshotParts(definition, apply(restored, { type: "inc" }));
    expect(decode(parts.constants!)).toEqual({ spec: { cores: 2 }, owner: "alice" });
  });

  it("rejects constants that are not a map as a corrupt snapshot", () => {
    const parts = encodeSnapshotParts(definition, created());
    expect(() => restore(definition, "probe/1", 1, parts.snapshot, Buffer.from([0x93, 1, 2, 3]))).toThrow(
      /unreadable/,
    );
  });
});

describe("a create's history entry for a kind whose input is its constants", () => {
  it("leaves the applied create's input out of history, and keeps a refused create's", () => {
    const lean = { ...definition, historyKeepsCreateInput: false };
    const created = step({
      definition: lean,
      actor: "probe/1",
      current: null,
      event: { type: "create", input: { spec: { cores: 8 }, owner: "alice" } },
      eventId: "e1",
      cause: "test",
      nowMs: 1,
    });
    expect(created.history.event).toEqual({ type: "create", input: "(the actor's constant fields)" });
    const again = step({
      definition: lean,
      actor: "probe/1",
      current: created.next,
      event: { type: "create", input: { spec: { cores: 9 }, owner: "bob" } },
      eventId: "e2",
      cause: "test",
      nowMs: 2,
    });
    expect(again.refusal?.code).toBe("ACTOR_EXISTS");
    expect(again.history.event).toEqual({ type: "create", input: { spec: { cores: 9 }, owner: "bob" } });
  });
});
