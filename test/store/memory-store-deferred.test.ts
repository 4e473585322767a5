import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOptions, CommitRecord } from "../../src/store/types.js";
import { record } from "./store-contract.js";

const at: CommitOptions = { nowMs: 1_000, dedupeWindowMs: 60_000 };

/** A record of `job/a` whose snapshot is deferred or given in `fields`. */
const jobA = (fields: Partial<CommitRecord>) =>
  record("job/a", { snapshot: null, historyCap: 10, ...fields });

describe("MemoryStore: snapshots encoded when read (CommitRecord.deferred)", () => {
  it("encodes a deferred snapshot once, when first read, and keeps a version per event", async () => {
    const store = new MemoryStore();
    expect(store.encodesLazily).toBe(true);
    const fence = (await store.acquireLease(0, "node", 10_000, at.nowMs))!;
    let encodings = 0;
    const deferred = (text: string) => () => {
      encodings++;
      return { snapshot: Buffer.from(text), constants: Buffer.from(`${text}-constants`) };
    };
    await store.commit(0, fence, [jobA({ deferred: deferred("one") })], at);
    await store.commit(
      0,
      fence,
      [jobA({ expectedVersion: 1, versionStep: 2, deferred: deferred("two") })],
      at,
    );
    expect(encodings).toBe(0);
    const [stored] = await store.loadActors(0, ["job/a"]);
    expect(encodings).toBe(1);
    expect(stored?.version).toBe(3);
    expect(stored?.snapshot.toString()).toBe("two");
    expect(stored?.constants?.toString()).toBe("two-constants");
    await store.loadActors(0, ["job/a"]);
    expect(store.exportState().shards[0]!.actors[0]![1].snapshot.toString()).toBe("two");
    expect(encodings).toBe(1);
  });

  it("keeps the constants a deferred snapshot encoded when an eager record leaves them alone", async () => {
    const store = new MemoryStore();
    const fence = (await store.acquireLease(0, "node", 10_000, at.nowMs))!;
    const deferred = () => ({ snapshot: Buffer.from("one"), constants: Buffer.from("kept") });
    await store.commit(0, fence, [jobA({ deferred })], at);
    await store.commit(0, fence, [jobA({ expectedVersion: 1, snapshot: Buffer.from("two") })], at);
    const [stored] = await store.loadActors(0, ["job/a"]);
    expect(stored?.snapshot.toString()).toBe("two");
    expect(stored?.constants?.toString()).toBe("kept");
  });

  it("encodes deferred effects when read", async () => {
    const store = new MemoryStore();
    const fence = (await store.acquireLease(0, "node", 10_000, at.nowMs))!;
    let encodings = 0;
    const later = (text: string) => () => {
      encodings++;
      return Buffer.from(text);
    };
    await store.commit(0, fence, [jobA({ snapshot: Buffer.from("s1"), history: [Buffer.from("h1")] })], at);
    await store.commit(
      0,
      fence,
      [
        jobA({
          expectedVersion: 1,
          versionStep: 2,
          snapshot: Buffer.from("s3"),
          history: [Buffer.from("h2"), Buffer.from("h3")],
          deferredOutbox: [{ effectId: "e1", encode: later("effect") }],
        }),
      ],
      at,
    );
    expect(encodings).toBe(0);
    expect((await store.readHistory(0, "job/a", 10)).map(String)).toEqual(["h1", "h2", "h3"]);
    expect((await store.readOutbox(0, 10)).map((e) => [e.effectId, String(e.payload)])).toEqual([
      ["e1", "effect"],
    ]);
    expect(encodings).toBe(1);
    await store.readOutbox(0, 10);
    expect(encodings).toBe(1);
  });

  it("refuses a deferred record of two events as a whole when one is a duplicate", async () => {
    const store = new MemoryStore();
    const fence = (await store.acquireLease(0, "node", 10_000, at.nowMs))!;
    await store.commit(0, fence, [jobA({ snapshot: Buffer.from("s1"), dedupeIds: ["x"] })], at);
    const two = jobA({
      expectedVersion: 1,
      versionStep: 2,
      snapshot: Buffer.from("s3"),
      history: [Buffer.from("h2"), Buffer.from("h3")],
      dedupeIds: ["x", "y"],
    });
    expect(await store.commit(0, fence, [two], at)).toEqual(["split"]);
  });
});
