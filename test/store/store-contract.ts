import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FencedError, StoreError } from "../../src/store/errors.js";
import type {
  ActorKey,
  CommitOptions,
  CommitOutcome,
  CommitRecord,
  Fence,
  Store,
  TimerEntry,
} from "../../src/store/types.js";

export interface StoreUnderTest {
  store: Store;
  cleanup: () => Promise<void>;
}

/** Times are given, never read from a clock: the store must only ever compare what it is told. */
const T0 = 1_700_000_000_000;
const LEASE_TTL_MS = 10_000;
const DEDUPE_WINDOW_MS = 60_000;
/** Every byte value, including CR, LF, NUL and invalid UTF-8. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const bytes = (text: string) => Buffer.from(text);
const at = (nowMs: number): CommitOptions => ({ nowMs, dedupeWindowMs: DEDUPE_WINDOW_MS });
const texts = (buffers: Buffer[]) => buffers.map((buffer) => buffer.toString());

/** A record that creates `actor` and does nothing else; tests override what they exercise. */
export function record(actor: ActorKey, fields: Partial<CommitRecord> = {}): CommitRecord {
  return {
    actor,
    expectedVersion: 0,
    snapshot: bytes(`${actor}@${(fields.expectedVersion ?? 0) + 1}`),
    history: [bytes(`${actor}#${(fields.expectedVersion ?? 0) + 1}`)],
    historyCap: 100,
    versionStep: 1,
    constants: null,
    timerAdds: [],
    timerCancels: [],
    outbox: [],
    counters: [],
    index: [],
    dedupeIds: [],
    acks: [],
    ...fields,
  };
}

function timer(
  timerKey: string,
  fireId: string,
  dueAtMs: number,
  payload = bytes(`fire:${fireId}`),
): TimerEntry {
  return { timerKey, fireId, dueAtMs, payload };
}

/**
 * The behaviour every `Store` must share, run against each implementation.
 * Orders the interface leaves open (scan order across stores) are not assumed.
 */
export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });

    afterEach(async () => {
      await cleanup();
    });

    async function own(shard = 0, owner = "node-a", nowMs = T0): Promise<Fence> {
      const lease = await store.acquireLease(shard, owner, LEASE_TTL_MS, nowMs);
      if (!lease) throw new Error(`shard ${shard} is held by another node`);
      return { owner, epoch: lease.epoch };
    }

    async function commitOne(fence: Fence, one: CommitRecord, nowMs = T0, shard = 0): Promise<CommitOutcome> {
      const [outcome] = await store.commit(shard, fence, [one], at(nowMs));
      return outcome!;
    }

    async function version(actor: ActorKey, shard = 0): Promise<number | null> {
      const [stored] = await store.loadActors(shard, [actor]);
      return stored?.version ?? null;
    }

    describe("leases and membership", () => {
      it("acquires a free shard at epoch 1", async () => {
        const lease = await store.acquireLease(3, "node-a", LEASE_TTL_MS, T0);
        expect(lease).toEqual({ shard: 3, owner: "node-a", epoch: 1, expiresAtMs: T0 + LEASE_TTL_MS });
        expect(await store.readLease(3)).toEqual(lease);
        expect(await store.readLease(4)).toBeNull();
      });

      it("refuses a live lease to another node; its holder re-acquiring renews it under the same epoch", async () => {
        await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0);
        expect(await store.acquireLease(0, "node-b", LEASE_TTL_MS, T0 + 1)).toBeNull();
        const again = await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0 + 5);
        expect(again).toEqual({ shard: 0, owner: "node-a", epoch: 1, expiresAtMs: T0 + 5 + LEASE_TTL_MS });
      });

      it("hands an expired lease over with a strictly greater epoch and fences the previous holder", async () => {
        const first = await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0);
        const second = await store.acquireLease(0, "node-b", LEASE_TTL_MS, T0 + LEASE_TTL_MS);
        expect(second).toMatchObject({ owner: "node-b", epoch: 2 });
        expect(
          await store.renewLease(0, { owner: "node-a", epoch: 1 }, LEASE_TTL_MS, T0 + LEASE_TTL_MS),
        ).toBeNull();
        await expect(
          store.commit(0, { owner: "node-a", epoch: 1 }, [record("job/1")], at(T0 + LEASE_TTL_MS)),
        ).rejects.toBeInstanceOf(FencedError);
        expect(await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0 + LEASE_TTL_MS + 1)).toBeNull();
        const third = await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0 + 3 * LEASE_TTL_MS);
        expect([first?.epoch, second?.epoch, third?.epoch]).toEqual([1, 2, 3]);
      });

      it("gives a node re-acquiring after its own lease expired a new epoch", async () => {
        await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0);
        const later = await store.acquireLease(0, "node-a", LEASE_TTL_MS, T0 + LEASE_TTL_MS);
        expect(later?.epoch).toBe(2);
        await expect(store.commit(0, { owner: "node-a", epoch: 1 }, [], at(T0))).rejects.toBeInstanceOf(
          FencedError,
        );
      });

      it("renews only under the current owner and epoch", async () => {
        const fence = await own();
        const renewed = await store.renewLease(0, fence, LEASE_TTL_MS, T0 + 100);
        expect(renewed).toEqual({
          shard: 0,
          owner: "node-a",
          epoch: 1,
          expiresAtMs: T0 + 100 + LEASE_TTL_MS,
        });
        expect(await store.readLease(0)).toEqual(renewed);
        expect(await store.renewLease(0, { owner: "node-a", epoch: 2 }, LEASE_TTL_MS, T0 + 200)).toBeNull();
        expect(await store.renewLease(0, { owner: "node-b", epoch: 1 }, LEASE_TTL_MS, T0 + 200)).toBeNull();
        expect(await store.readLease(0)).toEqual(renewed);
      });

      it("releases at once for the next owner at a greater epoch; a stranger's release changes nothing", async () => {
        const fence = await own();
        await store.releaseLease(0, { owner: "node-b", epoch: 1 });
        expect(await store.readLease(0)).toMatchObject({ owner: "node-a", expiresAtMs: T0 + LEASE_TTL_MS });
        await store.releaseLease(0, fence);
        expect(await store.readLease(0)).toMatchObject({ owner: "node-a", epoch: 1 });
        expect(await store.acquireLease(0, "node-b", LEASE_TTL_MS, T0 + 1)).toMatchObject({
          owner: "node-b",
          epoch: 2,
        });
        await expect(store.commit(0, fence, [record("job/1")], at(T0 + 1))).rejects.toBeInstanceOf(
          FencedError,
        );
      });

      it("reports the live nodes sorted and forgets expired and removed ones", async () => {
        expect(await store.heartbeatNode("node-b", 1000, T0)).toEqual(["node-b"]);
        expect(await store.heartbeatNode("node-a", 5000, T0 + 10)).toEqual(["node-a", "node-b"]);
        expect(await store.heartbeatNode("node-c", 5000, T0 + 1000)).toEqual(["node-a", "node-c"]);
        await store.removeNode("node-c");
        expect(await store.heartbeatNode("node-a", 5000, T0 + 2000)).toEqual(["node-a"]);
      });
    });

    describe("commits", () => {
      it("creates an actor at version 1 and chains versions", async () => {
        const fence = await own();
        expect(await store.commit(0, fence, [record("job/1", { snapshot: bytes("s1") })], at(T0))).toEqual([
          "ok",
        ]);
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 1, snapshot: bytes("s1"), constants: null },
        ]);
        const next = record("job/1", { expectedVersion: 1, snapshot: bytes("s2") });
        expect(await store.commit(0, fence, [next], at(T0))).toEqual(["ok"]);
        expect(await store.loadActors(0, ["job/1", "job/none"])).toEqual([
          { version: 2, snapshot: bytes("s2"), constants: null },
          null,
        ]);
        expect(await store.loadActors(0, [])).toEqual([]);
      });

      it("chains the records of one actor inside one batch", async () => {
        const fence = await own();
        const outcomes = await store.commit(
          0,
          fence,
          [
            record("job/1", { snapshot: bytes("v1") }),
            record("job/1", { expectedVersion: 1, snapshot: bytes("v2") }),
            record("job/1", { expectedVersion: 2, snapshot: bytes("v3") }),
            record("job/1", { expectedVersion: 2, snapshot: bytes("late") }),
          ],
          at(T0),
        );
        expect(outcomes).toEqual(["ok", "ok", "ok", "conflict"]);
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 3, snapshot: bytes("v3"), constants: null },
        ]);
        expect(await store.readHistory(0, "job/1", 10)).toHaveLength(3);
      });

      it("changes nothing on a version conflict", async () => {
        const fence = await own();
        await commitOne(fence, record("job/1", { timerAdds: [timer("job/1:old", "f-old", T0 + 100)] }));
        await store.appendInbox(0, [{ eventId: "ev-1", payload: bytes("e1") }]);
        const clash = record("job/1", {
          expectedVersion: 0,
          snapshot: bytes("clash"),
          history: [bytes("clash")],
          timerAdds: [timer("job/1:new", "f-new", T0 + 50)],
          timerCancels: ["job/1:old"],
          outbox: [{ effectId: "fx-1", payload: bytes("fx") }],
          index: [],
          dedupeIds: ["ev-1"],
          acks: [{ kind: "inbox", eventId: "ev-1" }],
        });
        expect(await commitOne(fence, clash)).toBe("conflict");
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 1, snapshot: bytes("job/1@1"), constants: null },
        ]);
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["job/1#1"]);
        expect((await store.dueTimers(0, T0 + 1000, 10)).map((t) => t.timerKey)).toEqual(["job/1:old"]);
        expect(await store.readOutbox(0, 10)).toEqual([]);
        expect((await store.readInbox(0, 0, 10)).map((e) => e.eventId)).toEqual(["ev-1"]);
        // The dedupe id of a conflicting record was not remembered either.
        expect(await commitOne(fence, record("job/1", { expectedVersion: 1, dedupeIds: ["ev-1"] }))).toBe(
          "ok",
        );
      });

      it("throws FencedError for a wrong owner, a stale epoch or no lease, and applies nothing of the batch", async () => {
        const stale = await own();
        await store.acquireLease(0, "node-b", LEASE_TTL_MS, T0 + LEASE_TTL_MS);
        const batch = ["job/1", "job/2", "job/3"].map((actor, i) =>
          record(actor, {
            timerAdds: [timer(`${actor}:t`, "f", T0)],
            outbox: [{ effectId: `fx-${i}`, payload: bytes("fx") }],
          }),
        );
        for (const [shard, fence] of [
          [0, stale],
          [0, { owner: "node-c", epoch: 2 }],
          [1, stale],
        ] as const) {
          const refused = store.commit(shard, fence, batch, at(T0 + LEASE_TTL_MS));
          await expect(refused).rejects.toBeInstanceOf(FencedError);
          await expect(refused).rejects.toMatchObject({
            code: "FENCED",
            shard,
            owner: fence.owner,
            epoch: fence.epoch,
          });
        }
        expect(await store.loadActors(0, ["job/1", "job/2", "job/3"])).toEqual([null, null, null]);
        expect(await store.readHistory(0, "job/1", 10)).toEqual([]);
        expect(await store.readOutbox(0, 10)).toEqual([]);
        expect(await store.dueTimers(0, T0 + LEASE_TTL_MS, 10)).toEqual([]);
        expect(await store.scanActors(0, "0", 10)).toEqual({ cursor: "0", actors: [] });
      });

      it("keeps state and version on a refused event (null snapshot) but records history and consumes the delivery", async () => {
        const fence = await own();
        await commitOne(fence, record("job/1"));
        await store.appendInbox(0, [{ eventId: "ev-1", payload: bytes("e1") }]);
        const refusal = record("job/1", {
          expectedVersion: 1,
          snapshot: null,
          history: [bytes("refused")],
          acks: [{ kind: "inbox", eventId: "ev-1" }],
        });
        expect(await commitOne(fence, refusal)).toBe("ok");
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 1, snapshot: bytes("job/1@1"), constants: null },
        ]);
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["job/1#1", "refused"]);
        expect(await store.readInbox(0, 0, 10)).toEqual([]);

        expect(await commitOne(fence, record("job/ghost", { snapshot: null }))).toBe("ok");
        expect(await version("job/ghost")).toBeNull();
        expect((await store.scanActors(0, "0", 10)).actors).toEqual(["job/1"]);
      });

      it("takes an empty snapshot as a snapshot", async () => {
        const fence = await own();
        expect(await commitOne(fence, record("job/1", { snapshot: Buffer.alloc(0) }))).toBe("ok");
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 1, snapshot: Buffer.alloc(0), constants: null },
        ]);
      });

      it("reports a duplicate event id, still applies its ack, and forgets the id after the window", async () => {
        const fence = await own();
        await store.appendInbox(0, [{ eventId: "ev-1", payload: bytes("e1") }]);
        const first = record("job/1", { dedupeIds: ["ev-1"], acks: [{ kind: "inbox", eventId: "ev-1" }] });
        expect(await commitOne(fence, first)).toBe("ok");

        // Delivered again (the inbox forgot it when it was consumed): a duplicate that must still be consumed.
        expect(await store.appendInbox(0, [{ eventId: "ev-1", payload: bytes("e1") }])).toBe(1);
        const again = record("job/1", {
          expectedVersion: 1,
          snapshot: bytes("again"),
          index: [],
          dedupeIds: ["ev-1"],
          acks: [{ kind: "inbox", eventId: "ev-1" }],
        });
        expect(await commitOne(fence, again, T0 + 10)).toBe("duplicate");
        expect(await store.readInbox(0, 0, 10)).toEqual([]);
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 1, snapshot: bytes("job/1@1"), constants: null },
        ]);
        expect(await store.readHistory(0, "job/1", 10)).toHaveLength(1);

        const late = record("job/1", { expectedVersion: 1, dedupeIds: ["ev-1"] });
        expect(await commitOne(fence, late, T0 + DEDUPE_WINDOW_MS)).toBe("duplicate");
        expect(await commitOne(fence, late, T0 + DEDUPE_WINDOW_MS + 1)).toBe("ok");
        expect(await version("job/1")).toBe(2);
      });

      it("forgets each id by the time it was seen, also after the clock stepped back", async () => {
        // A virtual clock or an NTP step: an id seen "in the future", then ids seen at earlier times.
        const lease = await store.acquireLease(0, "node-a", 100 * DEDUPE_WINDOW_MS, T0);
        const fence = { owner: "node-a", epoch: lease!.epoch };
        const future = T0 + 10 * DEDUPE_WINDOW_MS;
        expect(await commitOne(fence, record("job/1", { dedupeIds: ["ev-future"] }), future)).toBe("ok");
        expect(await commitOne(fence, record("job/2", { dedupeIds: ["ev-past"] }), T0)).toBe("ok");
        expect(await commitOne(fence, record("job/3", { dedupeIds: ["ev-later"] }), T0 + 10)).toBe("ok");

        // Past the window of the earlier ids, inside the window of the future one.
        const later = T0 + DEDUPE_WINDOW_MS + 5;
        const again = (actor: string, id: string) => record(actor, { expectedVersion: 1, dedupeIds: [id] });
        expect(await commitOne(fence, again("job/2", "ev-past"), later)).toBe("ok");
        expect(await commitOne(fence, again("job/3", "ev-later"), later)).toBe("duplicate");
        expect(await commitOne(fence, again("job/1", "ev-future"), later)).toBe("duplicate");
        expect(await commitOne(fence, again("job/3", "ev-later"), T0 + DEDUPE_WINDOW_MS + 11)).toBe("ok");
      });

      it("keeps ids seen by a node whose clock ran ahead when a node whose clock is behind takes over", async () => {
        const ahead = T0 + 5 * DEDUPE_WINDOW_MS;
        const leaseA = await store.acquireLease(0, "node-a", 1000, ahead);
        const fenceA = { owner: "node-a", epoch: leaseA!.epoch };
        expect(await commitOne(fenceA, record("job/1", { dedupeIds: ["ev-a"] }), ahead)).toBe("ok");
        const leaseB = await store.acquireLease(0, "node-b", 1000, ahead + 1000);
        const fenceB = { owner: "node-b", epoch: leaseB!.epoch };
        const again = (actor: string, id: string, expectedVersion = 0) =>
          record(actor, { expectedVersion, dedupeIds: [id] });
        // At the very millisecond node-a saw it, and before.
        expect(await commitOne(fenceB, again("job/1", "ev-a", 1), ahead)).toBe("duplicate");
        expect(await commitOne(fenceB, again("job/1", "ev-a", 1), T0)).toBe("duplicate");
        expect(await commitOne(fenceB, again("job/2", "ev-b"), T0)).toBe("ok");
        expect(await commitOne(fenceB, again("job/2", "ev-b", 1), T0)).toBe("duplicate");
        expect(
          await store.commit(0, fenceB, [again("job/3", "ev-c"), again("job/2", "ev-c", 1)], at(T0 + 1)),
        ).toEqual(["ok", "duplicate"]);
        // A conflicting record's id is not remembered.
        expect(await commitOne(fenceB, again("job/4", "ev-d", 7), ahead + 2000)).toBe("conflict");
        expect(await commitOne(fenceB, again("job/4", "ev-d"), ahead + 2000)).toBe("ok");
        expect(await commitOne(fenceB, again("job/4", "ev-d", 1), ahead + 2001)).toBe("duplicate");
      });

      it("reports a duplicate inside one batch", async () => {
        const fence = await own();
        const outcomes = await store.commit(
          0,
          fence,
          [record("job/1", { dedupeIds: ["ev-x"] }), record("job/2", { dedupeIds: ["ev-x"] })],
          at(T0),
        );
        expect(outcomes).toEqual(["ok", "duplicate"]);
        expect(await store.loadActors(0, ["job/1", "job/2"])).toMatchObject([{ version: 1 }, null]);
      });

      it("keeps the newest history entries up to the cap, oldest first", async () => {
        const fence = await own();
        for (let v = 0; v < 5; v++) {
          await commitOne(
            fence,
            record("job/1", { expectedVersion: v, history: [bytes(`h${v + 1}`)], historyCap: 3 }),
          );
        }
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["h3", "h4", "h5"]);
        expect(texts(await store.readHistory(0, "job/1", 2))).toEqual(["h4", "h5"]);
        expect(await store.readHistory(0, "job/1", 0)).toEqual([]);
        expect(await store.readHistory(0, "job/none", 10)).toEqual([]);
      });

      it("cuts a history down at once when the cap shrinks", async () => {
        const fence = await own();
        for (let v = 0; v < 5; v++) {
          await commitOne(fence, record("job/1", { expectedVersion: v, history: [bytes(`h${v + 1}`)] }));
        }
        await commitOne(
          fence,
          record("job/1", { expectedVersion: 5, history: [bytes("h6")], historyCap: 2 }),
        );
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["h5", "h6"]);
        await commitOne(
          fence,
          record("job/1", { expectedVersion: 6, history: [bytes("h7")], historyCap: 0 }),
        );
        expect(await store.readHistory(0, "job/1", 10)).toEqual([]);
      });

      it("commits 500 records in one call", async () => {
        const fence = await own();
        const actors = Array.from({ length: 500 }, (_, i) => `job/${i}`);
        const batch = actors.map((actor, i) =>
          record(actor, {
            index: [],
            dedupeIds: [`ev-${i}`],
            timerAdds: [timer(`${actor}:hb`, `f-${i}`, T0 + i)],
            outbox: [{ effectId: `fx-${i}`, payload: bytes(`fx-${i}`) }],
          }),
        );
        const outcomes = await store.commit(0, fence, batch, at(T0));
        expect(outcomes).toEqual(actors.map(() => "ok"));
        const loaded = await store.loadActors(0, actors);
        expect(loaded).toEqual(
          actors.map((actor) => ({ version: 1, snapshot: bytes(`${actor}@1`), constants: null })),
        );
        expect(await store.readOutbox(0, 1000)).toHaveLength(500);
        expect(await store.dueTimers(0, T0 + 1000, 1000)).toHaveLength(500);
      });

      it("commits to 16 shards, each on its own", async () => {
        const shards = Array.from({ length: 16 }, (_, i) => i);
        for (const shard of shards) {
          const fence = await own(shard);
          const one = record(`job/${shard}`, { outbox: [{ effectId: `fx-${shard}`, payload: bytes("fx") }] });
          expect(await commitOne(fence, one, T0, shard)).toBe("ok");
        }
        for (const shard of shards) {
          expect(await version(`job/${shard}`, shard)).toBe(1);
          expect(await version(`job/${shard}`, (shard + 1) % 16)).toBeNull();
          expect((await store.readOutbox(shard, 10)).map((e) => e.effectId)).toEqual([`fx-${shard}`]);
        }
      });
    });

    describe("batches of several shards", () => {
      it("commits each shard's batch as commit would, and refuses a fenced batch alone", async () => {
        const fence0 = await own(0);
        const fence1 = await own(1);
        const fence2 = await own(2);
        const results = await store.commitMany([
          { shard: 0, fence: fence0, records: [record("job/a"), record("job/b")], options: at(T0) },
          {
            shard: 1,
            fence: { ...fence1, epoch: fence1.epoch + 1 },
            records: [record("job/c")],
            options: at(T0),
          },
          {
            shard: 2,
            fence: fence2,
            records: [record("job/d"), record("job/e", { expectedVersion: 4 })],
            options: at(T0),
          },
        ]);
        expect(results[0]).toEqual(["ok", "ok"]);
        expect(results[1]).toBeInstanceOf(FencedError);
        expect((results[1] as FencedError).shard).toBe(1);
        expect(results[2]).toEqual(["ok", "conflict"]);
        expect(await version("job/a", 0)).toBe(1);
        expect(await version("job/c", 1)).toBeNull();
        expect(await version("job/d", 2)).toBe(1);
        expect(await store.commitMany([])).toEqual([]);
      });

      it("keeps seen ids past the window until a batch asks for the trim", async () => {
        const fence = await own();
        expect(await commitOne(fence, record("job/1", { dedupeIds: ["d"] }))).toBe("ok");
        const late = T0 + DEDUPE_WINDOW_MS + 1;
        const [kept] = await store.commitMany([
          {
            shard: 0,
            fence,
            records: [record("job/2", { dedupeIds: ["d"] })],
            options: { ...at(late), trimSeen: false },
          },
        ]);
        expect(kept).toEqual(["duplicate"]);
        expect(await commitOne(fence, record("job/3", { dedupeIds: ["d"] }), late)).toBe("ok");
      });
    });

    describe("records of several events", () => {
      const count = (name: string, delta: number) => ({ name, delta });

      it("applies a chain of events as one write: the version moves by each applied event, history gets one entry per event", async () => {
        const fence = await own();
        await store.appendInbox(0, [
          { eventId: "e1", payload: bytes("p1") },
          { eventId: "e2", payload: bytes("p2") },
        ]);
        const chain = record("job/1", {
          snapshot: bytes("after-three"),
          versionStep: 2,
          history: [bytes("h1"), bytes("h2-refused"), bytes("h3")],
          index: [],
          dedupeIds: ["e1", "e2"],
          acks: [
            { kind: "inbox", eventId: "e1" },
            { kind: "inbox", eventId: "e2" },
          ],
          timerAdds: [timer("job/1:hb", "f1", T0 + 100)],
          counters: [count("jobs:A:running", 1)],
        });
        expect(await commitOne(fence, chain)).toBe("ok");
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 2, snapshot: bytes("after-three"), constants: null },
        ]);
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["h1", "h2-refused", "h3"]);
        expect(await store.readInbox(0, 0, 10)).toEqual([]);
        expect((await store.dueTimers(0, T0 + 100, 10)).map((t) => t.fireId)).toEqual(["f1"]);
        expect(Object.fromEntries(await store.readCounters(0))).toEqual({ "jobs:A:running": 1 });
        // Every id of the chain is remembered.
        const late = record("job/1", { expectedVersion: 2, dedupeIds: ["e2"] });
        expect(await commitOne(fence, late)).toBe("duplicate");
      });

      it("splits a chain holding a seen dedupe id, a repeated id or a stale delivery, applying nothing of it", async () => {
        const fence = await own();
        expect(await commitOne(fence, record("job/1", { dedupeIds: ["seen"] }))).toBe("ok");
        await store.appendInbox(0, [{ eventId: "e1", payload: bytes("p1") }]);
        const chain = (fields: Partial<CommitRecord>) =>
          record("job/1", {
            expectedVersion: 1,
            snapshot: bytes("never"),
            versionStep: 2,
            history: [bytes("a"), bytes("b")],
            acks: [{ kind: "inbox", eventId: "e1" }],
            counters: [count("jobs:A:running", 1)],
            ...fields,
          });
        const splits = [
          chain({ dedupeIds: ["fresh", "seen"] }),
          chain({ dedupeIds: ["twice", "twice"] }),
          chain({ dedupeIds: ["r1", "r2", "r3", "r2", "r4"] }),
          // A long chain (the site's outcomes of a busy turn) is checked another way: the same rule.
          chain({ dedupeIds: [...Array.from({ length: 12 }, (_, i) => `long-${i}`), "long-0"] }),
          chain({
            acks: [
              { kind: "inbox", eventId: "e1" },
              { kind: "inbox", eventId: "gone" },
            ],
          }),
          chain({ acks: [{ kind: "timer", timerKey: "job/1:hb", fireId: "never-armed" }] }),
        ];
        for (const split of splits) expect(await commitOne(fence, split)).toBe("split");
        expect(await version("job/1")).toBe(1);
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["job/1#1"]);
        expect((await store.readInbox(0, 0, 10)).map((e) => e.eventId)).toEqual(["e1"]);
        expect(await store.readCounters(0)).toEqual(new Map());
        // The split ids were not remembered.
        expect(await commitOne(fence, record("job/2", { dedupeIds: ["fresh"] }))).toBe("ok");
      });

      it("decides each record of a batch as if the records before it were written", async () => {
        const fence = await own();
        await store.appendInbox(0, [{ eventId: "e1", payload: bytes("p1") }]);
        const outcomes = await store.commit(
          0,
          fence,
          [
            record("job/1", {
              timerAdds: [timer("job/1:hb", "f1", T0 + 50)],
              counters: [count("jobs:A:running", 1)],
              acks: [{ kind: "inbox", eventId: "e1" }],
            }),
            // The same actor again, at the version the first record left.
            record("job/1", {
              expectedVersion: 1,
              acks: [{ kind: "timer", timerKey: "job/1:hb", fireId: "f1" }],
              timerAdds: [timer("job/1:hb", "f2", T0 + 60)],
              counters: [count("jobs:A:running", -1)],
            }),
            // The inbox entry the first record consumed is gone for this one.
            record("job/2", { acks: [{ kind: "inbox", eventId: "e1" }] }),
            // Stale: the second record re-armed the timer with another fire id.
            record("job/1", {
              expectedVersion: 2,
              acks: [{ kind: "timer", timerKey: "job/1:hb", fireId: "f1" }],
            }),
            record("job/1", { expectedVersion: 1 }),
          ],
          at(T0),
        );
        expect(outcomes).toEqual(["ok", "ok", "stale", "stale", "conflict"]);
        expect(await version("job/1")).toBe(2);
        expect(await version("job/2")).toBeNull();
        expect((await store.dueTimers(0, T0 + 100, 10)).map((t) => t.fireId)).toEqual(["f2"]);
        // Up and down within the batch: back to 0, so removed.
        expect(await store.readCounters(0)).toEqual(new Map());
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["job/1#1", "job/1#2"]);
      });

      it("stores constants beside the snapshot, keeps them when a record brings none, and drops them on import", async () => {
        const fence = await own();
        expect(await commitOne(fence, record("job/1", { constants: bytes("spec") }))).toBe("ok");
        expect(await commitOne(fence, record("job/1", { expectedVersion: 1 }))).toBe("ok");
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 2, snapshot: bytes("job/1@2"), constants: bytes("spec") },
        ]);
        // A refused event (no snapshot) cannot change them.
        const refused = record("job/1", { expectedVersion: 2, snapshot: null, constants: bytes("ignored") });
        expect(await commitOne(fence, refused)).toBe("ok");
        const rewritten = record("job/1", { expectedVersion: 2, constants: bytes("spec-2") });
        expect(await commitOne(fence, rewritten)).toBe("ok");
        expect((await store.loadActors(0, ["job/1"]))[0]?.constants).toEqual(bytes("spec-2"));
        await store.importActor(0, fence, "job/1", 9, bytes("whole"));
        expect(await store.loadActors(0, ["job/1"])).toEqual([
          { version: 9, snapshot: bytes("whole"), constants: null },
        ]);
      });

      it("keeps the cap when a chain's entries overflow the history", async () => {
        const fence = await own();
        await commitOne(fence, record("job/1", { historyCap: 3 }));
        const chain = record("job/1", {
          expectedVersion: 1,
          versionStep: 3,
          history: [bytes("a"), bytes("b"), bytes("c")],
          historyCap: 3,
        });
        expect(await commitOne(fence, chain)).toBe("ok");
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["a", "b", "c"]);
        const long = record("job/1", {
          expectedVersion: 4,
          versionStep: 5,
          history: ["d", "e", "f", "g", "h"].map(bytes),
          historyCap: 3,
        });
        expect(await commitOne(fence, long)).toBe("ok");
        expect(texts(await store.readHistory(0, "job/1", 10))).toEqual(["f", "g", "h"]);
        expect(await version("job/1")).toBe(9);
      });
    });

    describe("timers", () => {
      it("arms, re-arms and cancels; a fire of a replaced or cancelled arming is stale", async () => {
        const fence = await own();
        await commitOne(fence, record("job/1", { timerAdds: [timer("job/1:hb", "f1", T0 + 100)] }));
        expect(await store.dueTimers(0, T0 + 99, 10)).toEqual([]);
        expect(await store.dueTimers(0, T0 + 100, 10)).toEqual([timer("job/1:hb", "f1", T0 + 100)]);

        const rearm = record("job/1", { expectedVersion: 1, timerAdds: [timer("job/1:hb", "f2", T0 + 200)] });
        await commitOne(fence, rearm);
        expect(await store.dueTimers(0, T0 + 1000, 10)).toEqual([timer("job/1:hb", "f2", T0 + 200)]);

        const oldFire = record("job/1", {
          expectedVersion: 2,
          acks: [{ kind: "timer", timerKey: "job/1:hb", fireId: "f1" }],
        });
        expect(await commitOne(fence, oldFire, T0 + 1000)).toBe("stale");
        expect(await version("job/1")).toBe(2);
        expect(await store.dueTimers(0, T0 + 1000, 10)).toHaveLength(1);

        const fire = record("job/1", {
          expectedVersion: 2,
          acks: [{ kind: "timer", timerKey: "job/1:hb", fireId: "f2" }],
        });
        expect(await commitOne(fence, fire, T0 + 1000)).toBe("ok");
        expect(await store.dueTimers(0, T0 + 1000, 10)).toEqual([]);
        expect(await store.nextTimerDueMs(0)).toBeNull();

        await commitOne(
          fence,
          record("job/1", { expectedVersion: 3, timerAdds: [timer("job/1:t2", "g1", T0 + 5)] }),
        );
        await commitOne(
          fence,
          record("job/1", { expectedVersion: 4, timerCancels: ["job/1:t2", "job/1:never"] }),
        );
        expect(await store.nextTimerDueMs(0)).toBeNull();
        const cancelledFire = record("job/1", {
          expectedVersion: 5,
          acks: [{ kind: "timer", timerKey: "job/1:t2", fireId: "g1" }],
        });
        expect(await commitOne(fence, cancelledFire)).toBe("stale");
      });

      it("lists due timers by due time (then key) up to the limit, and reports the next due time", async () => {
        const fence = await own();
        expect(await store.nextTimerDueMs(0)).toBeNull();
        const timers = [
          timer("c", "fc", T0 + 300),
          timer("a", "fa", T0 + 100),
          timer("z", "fz", T0 + 5000),
          timer("b2", "fb2", T0 + 200),
          timer("b1", "fb1", T0 + 200),
        ];
        await commitOne(fence, record("job/1", { timerAdds: timers }));
        expect((await store.dueTimers(0, T0 + 1000, 10)).map((t) => t.timerKey)).toEqual([
          "a",
          "b1",
          "b2",
          "c",
        ]);
        expect(await store.dueTimers(0, T0 + 1000, 2)).toEqual([
          timer("a", "fa", T0 + 100),
          timer("b1", "fb1", T0 + 200),
        ]);
        expect(await store.dueTimers(0, T0 + 1000, 0)).toEqual([]);
        expect(await store.nextTimerDueMs(0)).toBe(T0 + 100);
        expect(await store.nextTimerDueMs(1)).toBeNull();
      });
    });

    describe("inbox", () => {
      it("appends idempotently, reads in seq order after a cursor, and is consumed through a commit", async () => {
        const fence = await own();
        const entry = (id: string) => ({ eventId: id, payload: bytes(`p-${id}`) });
        expect(await store.appendInbox(0, [entry("e1"), entry("e2")])).toBe(2);
        expect(await store.appendInbox(0, [entry("e2"), entry("e3")])).toBe(1);
        expect(await store.appendInbox(0, [])).toBe(0);

        const all = await store.readInbox(0, 0, 10);
        expect(all.map((e) => e.eventId)).toEqual(["e1", "e2", "e3"]);
        expect(all.map((e) => e.payload.toString())).toEqual(["p-e1", "p-e2", "p-e3"]);
        const seqs = all.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(3);
        expect((await store.readInbox(0, seqs[0]!, 10)).map((e) => e.eventId)).toEqual(["e2", "e3"]);
        expect((await store.readInbox(0, 0, 1)).map((e) => e.eventId)).toEqual(["e1"]);
        expect(await store.readInbox(1, 0, 10)).toEqual([]);

        const consume = record("job/1", { acks: [{ kind: "inbox", eventId: "e2" }] });
        expect(await commitOne(fence, consume)).toBe("ok");
        expect((await store.readInbox(0, 0, 10)).map((e) => e.eventId)).toEqual(["e1", "e3"]);
        const again = record("job/1", { expectedVersion: 1, acks: [{ kind: "inbox", eventId: "e2" }] });
        expect(await commitOne(fence, again)).toBe("stale");
        const never = record("job/1", { expectedVersion: 1, acks: [{ kind: "inbox", eventId: "nope" }] });
        expect(await commitOne(fence, never)).toBe("stale");
        expect(await version("job/1")).toBe(1);
      });

      it("tells subscribers which shard received events", async () => {
        let received!: (shard: number) => void;
        const notified = new Promise<number>((resolve) => {
          received = resolve;
        });
        const unsubscribe = await store.subscribeInbox((shard) => received(shard));
        await store.appendInbox(7, [{ eventId: "e1", payload: bytes("p") }]);
        expect(await notified).toBe(7);
        await unsubscribe();
      });
    });

    describe("outbox", () => {
      it("queues effects in order, ignores a known effect id, and removes acknowledged effects", async () => {
        const fence = await own();
        const effect = (id: string, payload = id) => ({ effectId: id, payload: bytes(payload) });
        await commitOne(
          fence,
          record("job/1", { outbox: [effect("x1"), effect("x2"), effect("x2", "dup")] }),
        );
        await commitOne(
          fence,
          record("job/1", { expectedVersion: 1, outbox: [effect("x2", "again"), effect("x3")] }),
        );

        const queued = await store.readOutbox(0, 10);
        expect(queued.map((e) => [e.effectId, e.payload.toString()])).toEqual([
          ["x1", "x1"],
          ["x2", "x2"],
          ["x3", "x3"],
        ]);
        const seqs = queued.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect((await store.readOutbox(0, 2)).map((e) => e.effectId)).toEqual(["x1", "x2"]);

        await store.ackOutbox(new Map([[0, ["x1", "x3", "unknown"]]]));
        await store.ackOutbox(new Map([[0, []]]));
        expect((await store.readOutbox(0, 10)).map((e) => e.effectId)).toEqual(["x2"]);
      });

      it("removes acknowledged effects of several shards in one call and leaves the rest", async () => {
        const effect = (id: string) => ({ effectId: id, payload: bytes(id) });
        for (const shard of [0, 1, 2]) {
          const fence = await own(shard);
          await store.commit(
            shard,
            fence,
            [record("job/1", { outbox: [effect(`s${shard}-a`), effect(`s${shard}-b`)] })],
            at(T0),
          );
        }
        await store.ackOutbox(
          new Map([
            [0, ["s0-a"]],
            [1, []],
            [2, ["s2-a", "s2-b", "s0-b"]],
          ]),
        );
        const left = async (shard: number) => (await store.readOutbox(shard, 10)).map((e) => e.effectId);
        expect(await left(0)).toEqual(["s0-b"]);
        expect(await left(1)).toEqual(["s1-a", "s1-b"]);
        expect(await left(2)).toEqual([]);
      });
    });

    describe("counters", () => {
      it("change with the records that apply, per shard, and forget a counter back at 0", async () => {
        const fence = await own();
        const count = (name: string, delta: number) => ({ name, delta });
        const [created, conflicted] = await store.commit(
          0,
          fence,
          [
            record("job/1", { counters: [count("jobs:A:running", 1), count("jobs:A:sent", 2)] }),
            record("job/2", { expectedVersion: 5, counters: [count("jobs:A:running", 100)] }),
          ],
          at(T0),
        );
        expect([created, conflicted]).toEqual(["ok", "conflict"]);
        expect(await store.readCounters(0)).toEqual(
          new Map([
            ["jobs:A:running", 1],
            ["jobs:A:sent", 2],
          ]),
        );
        // A duplicate and a stale delivery change no counter either.
        expect(await commitOne(fence, record("job/3", { dedupeIds: ["d1"] }))).toBe("ok");
        expect(
          await commitOne(
            fence,
            record("job/4", { dedupeIds: ["d1"], counters: [count("jobs:A:running", 7)] }),
          ),
        ).toBe("duplicate");
        expect(
          await commitOne(
            fence,
            record("job/5", {
              acks: [{ kind: "inbox", eventId: "never-queued" }],
              counters: [count("jobs:A:running", 7)],
            }),
          ),
        ).toBe("stale");
        // A later transition moves a job on: its counts move with it, and those back at 0 are gone.
        expect(
          await commitOne(
            fence,
            record("job/1", {
              expectedVersion: 1,
              counters: [count("jobs:A:sent", -2), count("jobs:A:running", -1), count("jobs:B:running", 1)],
            }),
          ),
        ).toBe("ok");
        expect(await store.readCounters(0)).toEqual(new Map([["jobs:B:running", 1]]));
        expect(await store.readCounters(1)).toEqual(new Map());
        // Counted again from 0.
        expect(
          await commitOne(
            fence,
            record("job/1", { expectedVersion: 2, counters: [count("jobs:A:sent", 3)] }),
          ),
        ).toBe("ok");
        expect(await store.readCounters(0)).toEqual(
          new Map([
            ["jobs:B:running", 1],
            ["jobs:A:sent", 3],
          ]),
        );
      });
    });

    describe("indexes", () => {
      const add = (key: string, member: string, score: number) => ({ key, member, score });
      const remove = (key: string, member: string) => ({ key, member, score: null });
      const members = async (key: string, shard = 0, offset = 0, limit = 100) =>
        (await store.readIndex(shard, key, offset, limit)).map((e) => `${e.member}:${e.score}`);

      it("change with the records that apply, in score order, and never with one that does not", async () => {
        const fence = await own();
        const outcomes = await store.commit(
          0,
          fence,
          [
            record("job/b", { index: [add("queue:A", "b", 20), add("pilot:p1", "b", 0)] }),
            record("job/a", { index: [add("queue:A", "a", 10)] }),
            record("job/c", { index: [add("queue:A", "c", 10)] }),
            record("job/x", { expectedVersion: 3, index: [add("queue:A", "x", 1)] }),
          ],
          at(T0),
        );
        expect(outcomes).toEqual(["ok", "ok", "ok", "conflict"]);
        // Ties in score go by member, as in a Redis sorted set.
        expect(await members("queue:A")).toEqual(["a:10", "c:10", "b:20"]);
        expect(await members("queue:A", 0, 1, 1)).toEqual(["c:10"]);
        expect(await members("pilot:p1")).toEqual(["b:0"]);
        // A duplicate and a stale delivery change no index.
        expect(await commitOne(fence, record("job/d", { dedupeIds: ["d1"] }))).toBe("ok");
        expect(
          await commitOne(fence, record("job/e", { dedupeIds: ["d1"], index: [add("queue:A", "e", 1)] })),
        ).toBe("duplicate");
        expect(
          await commitOne(
            fence,
            record("job/f", {
              acks: [{ kind: "inbox", eventId: "never-queued" }],
              index: [add("queue:A", "f", 1)],
            }),
          ),
        ).toBe("stale");
        // A move: out of one index, re-scored in another, the last member of a third gone.
        expect(
          await commitOne(
            fence,
            record("job/b", {
              expectedVersion: 1,
              index: [remove("queue:A", "b"), add("queue:A", "a", 30), remove("pilot:p1", "b")],
            }),
          ),
        ).toBe("ok");
        expect(await members("queue:A")).toEqual(["c:10", "a:30"]);
        expect(await members("pilot:p1")).toEqual([]);
        expect(await store.readIndexes(0)).toEqual(
          new Map([
            [
              "queue:A",
              [
                { member: "c", score: 10 },
                { member: "a", score: 30 },
              ],
            ],
          ]),
        );
      });

      it("decides a batch's changes of one member in order, and keeps each shard's indexes apart", async () => {
        const fence0 = await own(0);
        const fence1 = await own(1);
        const outcomes = await store.commit(
          0,
          fence0,
          [
            record("job/a", { index: [add("q", "m", 1), add("q", "n", 2)] }),
            record("job/a", { expectedVersion: 1, index: [remove("q", "m"), add("q", "n", 5)] }),
            record("job/b", { index: [add("q", "m", 7)] }),
          ],
          at(T0),
        );
        expect(outcomes).toEqual(["ok", "ok", "ok"]);
        expect(await members("q")).toEqual(["n:5", "m:7"]);
        await commitOne(fence1, record("job/z", { index: [add("q", "z", 3)] }), T0, 1);
        expect(await members("q", 1)).toEqual(["z:3"]);
        expect(await members("q")).toEqual(["n:5", "m:7"]);
        expect([...(await store.readIndexes(1)).keys()]).toEqual(["q"]);
        expect(await members("nothing")).toEqual([]);
      });

      it("rebuilds a shard's indexes and its projected counters under the fence, and remembers the version", async () => {
        const fence = await own();
        await commitOne(
          fence,
          record("job/a", {
            index: [add("old", "a", 1), add("q", "a", 2)],
            counters: [
              { name: "jobs:A:running", delta: 3 },
              { name: "other:kept", delta: 4 },
            ],
          }),
        );
        expect(await store.readIndexVersion(0)).toBe(0);
        const rebuild = {
          version: 7,
          indexes: new Map([
            [
              "q",
              [
                { member: "b", score: 5 },
                { member: "a", score: 6 },
              ],
            ],
            ["fresh", [{ member: "c", score: 1 }]],
          ]),
          counters: new Map([
            ["jobs:B:sent", 2],
            ["jobs:C:sent", 0],
          ]),
          counterPrefixes: ["jobs:"],
        };
        await expect(
          store.rebuildIndexes(0, { ...fence, epoch: fence.epoch + 1 }, rebuild),
        ).rejects.toBeInstanceOf(FencedError);
        expect(await store.readIndexVersion(0)).toBe(0);
        await store.rebuildIndexes(0, fence, rebuild);
        expect(await store.readIndexVersion(0)).toBe(7);
        expect(await members("q")).toEqual(["b:5", "a:6"]);
        expect(await members("fresh")).toEqual(["c:1"]);
        expect(await members("old")).toEqual([]);
        expect([...(await store.readIndexes(0)).keys()].sort()).toEqual(["fresh", "q"]);
        expect(await store.readCounters(0)).toEqual(
          new Map([
            ["other:kept", 4],
            ["jobs:B:sent", 2],
          ]),
        );
        // Commits go on from the rebuilt state.
        expect(
          await commitOne(
            fence,
            record("job/a", { expectedVersion: 1, index: [remove("q", "b"), add("fresh", "d", 0)] }),
          ),
        ).toBe("ok");
        expect(await members("q")).toEqual(["a:6"]);
        expect(await members("fresh")).toEqual(["d:0", "c:1"]);
        // An index the rebuild dropped, given members again under the same fence, is found again.
        expect(
          await commitOne(fence, record("job/b", { expectedVersion: 0, index: [add("old", "b", 4)] })),
        ).toBe("ok");
        expect([...(await store.readIndexes(0)).keys()].sort()).toEqual(["fresh", "old", "q"]);
      });
    });

    describe("actors outside commits", () => {
      it("imports a snapshot under the fence only", async () => {
        const fence = await own();
        await expect(
          store.importActor(0, { owner: "node-a", epoch: 99 }, "job/9", 7, bytes("x")),
        ).rejects.toBeInstanceOf(FencedError);
        expect(await version("job/9")).toBeNull();
        await store.importActor(0, fence, "job/9", 7, bytes("restored"));
        expect(await store.loadActors(0, ["job/9"])).toEqual([
          { version: 7, snapshot: bytes("restored"), constants: null },
        ]);
        expect((await store.scanActors(0, "0", 10)).actors).toEqual(["job/9"]);
        expect(await commitOne(fence, record("job/9", { expectedVersion: 7 }))).toBe("ok");
        expect(await version("job/9")).toBe(8);
      });

      it("scans every actor of a shard across pages", async () => {
        const fence = await own();
        const actors = Array.from({ length: 25 }, (_, i) => `job/${i}`);
        await store.commit(
          0,
          fence,
          actors.map((actor) => record(actor)),
          at(T0),
        );
        await commitOne(await own(1), record("job/elsewhere"), T0, 1);

        const seen: ActorKey[] = [];
        let cursor = "0";
        let pages = 0;
        do {
          const page = await store.scanActors(0, cursor, 7);
          expect(page.actors.length).toBeLessThanOrEqual(7);
          seen.push(...page.actors);
          cursor = page.cursor;
          pages++;
        } while (cursor !== "0" && pages < 100);
        expect(cursor).toBe("0");
        expect(seen).toHaveLength(25);
        expect([...seen].sort()).toEqual([...actors].sort());
        expect(pages).toBeGreaterThanOrEqual(4);
        expect(await store.scanActors(5, "0", 10)).toEqual({ cursor: "0", actors: [] });
      });
    });

    it("round-trips every byte value in snapshots, history and payloads", async () => {
      const fence = await own();
      await store.appendInbox(0, [{ eventId: "ev-bin", payload: ALL_BYTES }]);
      const binary = record("job/bin", {
        snapshot: ALL_BYTES,
        history: [ALL_BYTES],
        timerAdds: [timer("job/bin:t", "f", T0, ALL_BYTES)],
        outbox: [{ effectId: "fx-bin", payload: ALL_BYTES }],
      });
      expect(await commitOne(fence, binary)).toBe("ok");
      expect(await store.loadActors(0, ["job/bin"])).toEqual([
        { version: 1, snapshot: ALL_BYTES, constants: null },
      ]);
      expect(await store.readHistory(0, "job/bin", 1)).toEqual([ALL_BYTES]);
      expect((await store.dueTimers(0, T0, 1))[0]?.payload).toEqual(ALL_BYTES);
      expect((await store.readOutbox(0, 1))[0]?.payload).toEqual(ALL_BYTES);
      expect((await store.readInbox(0, 0, 1))[0]?.payload).toEqual(ALL_BYTES);
      await store.importActor(0, fence, "job/imported", 3, ALL_BYTES);
      expect(await store.loadActors(0, ["job/imported"])).toEqual([
        { version: 3, snapshot: ALL_BYTES, constants: null },
      ]);
    });

    it("refuses every call once closed", async () => {
      await store.close();
      await expect(store.acquireLease(0, "node-a", LEASE_TTL_MS, T0)).rejects.toMatchObject({
        code: "UNAVAILABLE",
      });
      await expect(store.loadActors(0, ["job/1"])).rejects.toBeInstanceOf(StoreError);
      await store.close();
    });
  });
}
