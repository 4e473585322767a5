import { describe, expect, it } from "vitest";
import { decode, encode, encodeFrame, packWith } from "../../src/protocol/codec.js";
import {
  decodeEffectPayload,
  decodeHistoryEntry,
  decodeSnapshotRecord,
  type EffectPayload,
  encodeEffectPayload,
  encodeHistoryEntry,
  encodeSnapshotRecord,
  type HistoryEntry,
  type SnapshotRecord,
} from "../../src/runtime/records.js";
import { packr as durablePackr } from "../../src/store/durable-ops.js";

/**
 * The records written for every transition are msgpack arrays; those older
 * nodes wrote are maps. Both read back the same, and a record of neither
 * shape is a typed error.
 */
describe("stored records", () => {
  const entry: HistoryEntry = {
    v: 4,
    at: 1_700_000_000_123,
    id: "pilot:p-1:job-1:f9",
    event: { type: "pilot.running", pilotId: "p-1", attempt: 1 },
    from: "starting",
    to: "running",
    cause: "pilot:p-1",
  };
  const refused: HistoryEntry = {
    ...entry,
    to: "starting",
    refused: { code: "EVENT_NOT_ACCEPTED", message: "no" },
  };
  const snapshot: SnapshotRecord = {
    k: "job",
    mv: 4,
    s: { value: { defined: "brokering" }, context: { site: null, tries: 0 }, status: "active" },
  };
  const done: SnapshotRecord = {
    k: "task",
    mv: 2,
    s: { value: "done", context: {}, status: "done", output: 7 },
  };
  const send: EffectPayload = { t: "send", id: "e1", from: "job/1", to: "task/t", e: { type: "job.ended" } };
  const intake: EffectPayload = { ...send, lane: "intake" };
  const emit: EffectPayload = {
    t: "emit",
    id: "e2",
    from: "job/1",
    effect: "queue.add",
    data: { site: "A" },
  };

  it("writes arrays, without the keys, and reads them back whole", () => {
    for (const e of [entry, refused]) {
      expect(Array.isArray(decode(encodeHistoryEntry(e)))).toBe(true);
      expect(decodeHistoryEntry(encodeHistoryEntry(e))).toEqual(e);
    }
    for (const s of [snapshot, done]) expect(decodeSnapshotRecord(encodeSnapshotRecord(s))).toEqual(s);
    for (const f of [send, intake, emit]) expect(decodeEffectPayload(encodeEffectPayload(f))).toEqual(f);
    expect(encodeHistoryEntry(entry).length).toBeLessThan(encode(entry).length - 20);
  });

  it("reads the maps older nodes wrote as before", () => {
    expect(decodeHistoryEntry(encode(refused))).toEqual(refused);
    expect(decodeSnapshotRecord(encode(snapshot))).toEqual(snapshot);
    expect(decodeEffectPayload(encode(intake))).toEqual(intake);
    expect(decodeEffectPayload(encode(emit))).toEqual(emit);
  });

  it("refuses a record of neither shape with a typed error", () => {
    expect(() => decodeHistoryEntry(encode(["x"]))).toThrow(/invalid history entry/);
    expect(() => decodeSnapshotRecord(encode({ hello: "world" }))).toThrow(/invalid snapshot/);
    expect(() => decodeEffectPayload(Buffer.from([0x92]))).toThrow(/not valid msgpack/);
  });
});

describe("encoded bytes kept for long", () => {
  it("are not views of a buffer grown for a large value encoded before them", () => {
    // Records, pilot frames and the durable store's log and snapshots: one shared buffer for all.
    const encoders = [
      encode,
      (value: unknown) => encodeFrame(value as object),
      (value: unknown) => packWith(durablePackr, value),
    ];
    for (const encodeOne of encoders) {
      const large = encodeOne({ files: Array.from({ length: 5_000 }, (_, i) => `file-${i}.root`) });
      expect(large.length).toBeGreaterThan(50_000);
      // An entry a store keeps for hours keeps alive all of the buffer it is a view of.
      const small = encodeOne({ type: "pilot.running", atMs: 1 });
      expect(small.buffer.byteLength).toBeLessThanOrEqual(8192);
      expect(decode(small)).toEqual({ type: "pilot.running", atMs: 1 });
      expect((decode(large) as { files: string[] }).files).toHaveLength(5_000);
    }
  });
});
