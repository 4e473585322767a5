import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FencedError, SCRIPT_ERROR, scriptErrorFor } from "../../src/store/errors.js";
import { encodeCommit, encodeCommitCall } from "../../src/store/redis-commit-args.js";
import { type ScriptArg, StoreScripts } from "../../src/store/redis-scripts.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { ShardKeys } from "../../src/store/shard-keys.js";
import { cleanupPrefix, findRedisUrl, uniquePrefix } from "../support/redis.js";
import { record } from "./store-contract.js";

const redisUrl = await findRedisUrl();

/** What only the Redis store has: connection ownership, key layout, script argument checks. */
describe.skipIf(!redisUrl)("RedisStore specifics", () => {
  let admin: Redis;
  let prefix: string;

  beforeAll(() => {
    admin = new Redis(redisUrl!);
    prefix = uniquePrefix("redis-store");
  });

  afterAll(async () => {
    await cleanupPrefix(admin, prefix);
    await admin.quit();
  });

  it("leaves a client it was given open, unless told to own it", async () => {
    const client = new Redis(redisUrl!);
    await new RedisStore(client).close();
    await new RedisStore({ client, prefix }).close();
    expect(await client.ping()).toBe("PONG");
    await new RedisStore({ client, prefix, ownsClient: true }).close();
    await expect(client.ping()).rejects.toThrow(/closed/i);
  });

  it("closes the subscriber connection it opened", async () => {
    const store = await RedisStore.connect({ url: redisUrl!, prefix });
    await store.subscribeInbox(() => {});
    const subscribers = async () =>
      Number(await admin.pubsub("NUMSUB", `${prefix}:inbox-notify`).then((r) => r[1]));
    expect(await subscribers()).toBe(1);
    await store.close();
    expect(await subscribers()).toBe(0);
  });

  it("refuses a prefix that would move the shard hash tag", () => {
    expect(() => new RedisStore({ client: admin, prefix: "a{b}" })).toThrow(/hash tag/);
  });

  it("names the store after the kind of client", async () => {
    const store = new RedisStore({ client: admin, prefix });
    expect(store.name).toBe("redis");
    await store.close();
  });

  it("keeps every key of a shard under its hash tag", async () => {
    const store = new RedisStore({ client: admin, prefix });
    const lease = await store.acquireLease(12, "node-a", 1000, 0);
    const fence = { owner: "node-a", epoch: lease!.epoch };
    await store.appendInbox(12, [{ eventId: "e", payload: Buffer.from("p") }]);
    await store.commit(
      12,
      fence,
      [
        {
          actor: "job/1",
          expectedVersion: 0,
          snapshot: Buffer.from("s"),
          history: [Buffer.from("h")],
          historyCap: 10,
          versionStep: 1,
          constants: null,
          timerAdds: [{ timerKey: "job/1:t", fireId: "f", dueAtMs: 5, payload: Buffer.from("t") }],
          timerCancels: [],
          outbox: [{ effectId: "x", payload: Buffer.from("x") }],
          counters: [{ name: "jobs:S:running", delta: 1 }],
          index: [],
          dedupeIds: ["e"],
          acks: [],
        },
      ],
      { nowMs: 0, dedupeWindowMs: 1000 },
    );
    const keys = await admin.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThanOrEqual(10);
    for (const key of keys) expect(key.startsWith(`${prefix}:{s012}:`)).toBe(true);
    await store.close();
  });

  it("never shows half of a commit to a concurrent read", async () => {
    const writer = await RedisStore.connect({ url: redisUrl!, prefix });
    const reader = await RedisStore.connect({ url: redisUrl!, prefix });
    const lease = await writer.acquireLease(20, "node-a", 60_000, 0);
    const fence = { owner: "node-a", epoch: lease!.epoch };
    const rearm = (version: number) => ({
      actor: "job/1",
      expectedVersion: version,
      snapshot: Buffer.from(`v${version + 1}`),
      history: [Buffer.from("h")],
      historyCap: 1,
      versionStep: 1,
      constants: null,
      timerAdds: [
        { timerKey: "job/1:t", fireId: `f${version}`, dueAtMs: version, payload: Buffer.from(`f${version}`) },
      ],
      timerCancels: [],
      outbox: [{ effectId: `x${version}`, payload: Buffer.from(`x${version}`) }],
      counters: [],
      index: [],
      dedupeIds: [],
      acks: [],
    });
    const writes = (async () => {
      for (let version = 0; version < 200; version++) {
        expect(await writer.commit(20, fence, [rearm(version)], { nowMs: 0, dedupeWindowMs: 0 })).toEqual([
          "ok",
        ]);
      }
    })();
    const reads = (async () => {
      for (let i = 0; i < 200; i++) {
        const [timers, outbox] = await Promise.all([
          reader.dueTimers(20, 1000, 10),
          reader.readOutbox(20, 1000),
        ]);
        for (const t of timers) expect(t.payload.toString()).toBe(t.fireId);
        for (const e of outbox) expect(e.payload.toString()).toBe(e.effectId);
      }
    })();
    await Promise.all([writes, reads]);
    await Promise.all([writer.close(), reader.close()]);
  });

  it("reads an outbox longer than one chunk of the script's HMGET, in order, dropping an entry whose payload is gone", async () => {
    const store = new RedisStore({ client: admin, prefix });
    const lease = await store.acquireLease(21, "node-a", 60_000, 0);
    const fence = { owner: "node-a", epoch: lease!.epoch };
    const ids = Array.from({ length: 4500 }, (_, i) => `x${i}`);
    const outcomes = await store.commit(
      21,
      fence,
      [record("job/1", { outbox: ids.map((id) => ({ effectId: id, payload: Buffer.from(`p-${id}`) })) })],
      { nowMs: 0, dedupeWindowMs: 0 },
    );
    expect(outcomes).toEqual(["ok"]);
    await admin.hdel(new ShardKeys(prefix, 21).outboxData, "x4100");
    const read = await store.readOutbox(21, 10_000);
    const expected = ids.filter((id) => id !== "x4100");
    expect(read.map((e) => e.effectId)).toEqual(expected);
    expect(read.every((e) => e.payload.toString() === `p-${e.effectId}`)).toBe(true);
    expect((await store.readOutbox(21, 3)).map((e) => e.effectId)).toEqual(["x0", "x1", "x2"]);
    await store.close();
  });

  it("numbers effects within the lease's epoch without a counter: a later holder's after an earlier one's", async () => {
    const shard = 22;
    const keys = new ShardKeys(prefix, shard);
    // Refused events only (no snapshot): the actor stays at version 0, so every commit expects 0.
    const effects = (...ids: string[]) =>
      record("job/1", {
        snapshot: null,
        versionStep: 0,
        outbox: ids.map((id) => ({ effectId: id, payload: Buffer.from(id) })),
      });
    const options = { nowMs: 0, dedupeWindowMs: 0 };
    const queued = async (store: RedisStore) =>
      (await store.readOutbox(shard, 100)).map((e) => [e.effectId, e.seq]);

    const a = new RedisStore({ client: admin, prefix });
    const leaseA = await a.acquireLease(shard, "node-a", 1000, 0);
    const fenceA = { owner: "node-a", epoch: leaseA!.epoch };
    await a.commit(shard, fenceA, [effects("a1", "a2")], options);
    await a.commit(shard, fenceA, [effects("a3")], options);
    const epochA = fenceA.epoch * 2 ** 32;
    expect(await queued(a)).toEqual([
      ["a1", epochA + 1],
      ["a2", epochA + 2],
      ["a3", epochA + 3],
    ]);
    expect(await admin.exists(keys.outboxSeq)).toBe(0);

    // The same owner in a new process while its lease lives keeps the epoch, and goes on after what is queued.
    const again = new RedisStore({ client: admin, prefix });
    expect((await again.acquireLease(shard, "node-a", 1000, 10))!.epoch).toBe(fenceA.epoch);
    await again.commit(shard, fenceA, [effects("a4")], options);

    // Another node, once the lease expired: a higher epoch, so its effects come after.
    const b = new RedisStore({ client: admin, prefix });
    const leaseB = await b.acquireLease(shard, "node-b", 1000, 5000);
    const fenceB = { owner: "node-b", epoch: leaseB!.epoch };
    expect(fenceB.epoch).toBeGreaterThan(fenceA.epoch);
    await expect(a.commit(shard, fenceA, [effects("stale")], options)).rejects.toBeInstanceOf(FencedError);
    await b.commit(shard, fenceB, [effects("b1")], options);
    expect(await queued(b)).toEqual([
      ["a1", epochA + 1],
      ["a2", epochA + 2],
      ["a3", epochA + 3],
      ["a4", epochA + 4],
      ["b1", fenceB.epoch * 2 ** 32 + 1],
    ]);

    // An epoch past what a double numbers exactly falls back to the shard's counter.
    await admin.hset(keys.lease, "epoch", 2 ** 21);
    // An effect queued already keeps its seq and payload.
    await b.commit(shard, { owner: "node-b", epoch: 2 ** 21 }, [effects("c1", "a1")], options);
    expect(await queued(b)).toEqual([
      ["c1", 1],
      ["a1", epochA + 1],
      ["a2", epochA + 2],
      ["a3", epochA + 3],
      ["a4", epochA + 4],
      ["b1", fenceB.epoch * 2 ** 32 + 1],
    ]);
    expect(await admin.get(keys.outboxSeq)).toBe("2");
    await Promise.all([a.close(), again.close(), b.close()]);
  });

  it("adds an index's name to the shard's set once per fence, and again after a takeover, a rebuild or a lost connection", async () => {
    const shard = 23;
    const keys = new ShardKeys(prefix, shard);
    const client = new Redis(redisUrl!);
    const store = new RedisStore({ client, prefix, ownsClient: true });
    const indexed = (actor: string, expectedVersion: number, key: string, member: string) =>
      record(actor, { expectedVersion, index: [{ key, member, score: 1 }] });
    const options = { nowMs: 0, dedupeWindowMs: 0 };
    const names = async () =>
      (await admin.smembers(keys.indexNames)).map((k) => k.slice(keys.indexPrefix.length));
    let fence = { owner: "node-a", epoch: (await store.acquireLease(shard, "node-a", 60_000, 0))!.epoch };
    // A conflicting record registers nothing, so the next commit still does.
    expect(await store.commit(shard, fence, [indexed("job/1", 5, "q", "1")], options)).toEqual(["conflict"]);
    expect(await names()).toEqual([]);
    expect(await store.commit(shard, fence, [indexed("job/1", 0, "q", "1")], options)).toEqual(["ok"]);
    expect(await names()).toEqual(["q"]);
    // Taken out behind the store's back, the name is not added again under the same fence: that is the command saved.
    await admin.srem(keys.indexNames, keys.index("q"));
    await store.commit(shard, fence, [indexed("job/2", 0, "q", "2")], options);
    expect(await names()).toEqual([]);
    // Taking the lease (anew) forgets what the store knew; so does a rebuild.
    fence = { owner: "node-a", epoch: (await store.acquireLease(shard, "node-a", 60_000, 1))!.epoch };
    await store.commit(shard, fence, [indexed("job/3", 0, "q", "3")], options);
    expect(await names()).toEqual(["q"]);
    // A lost connection may be a Redis that lost its last writes: the store forgets what it knew.
    await admin.srem(keys.indexNames, keys.index("q"));
    const closed = new Promise((resolve) => client.once("close", resolve));
    client.disconnect(true);
    await closed;
    await store.commit(shard, fence, [indexed("job/6", 0, "q", "6")], options);
    expect(await names()).toEqual(["q"]);
    await store.rebuildIndexes(shard, fence, {
      version: 1,
      indexes: new Map(),
      counters: new Map(),
      counterPrefixes: [],
    });
    expect(await names()).toEqual([]);
    await store.commit(shard, fence, [indexed("job/4", 0, "q", "4")], options);
    expect(await names()).toEqual(["q"]);
    // What the set holds when the holder reads the indexes is known too.
    await admin.sadd(keys.indexNames, keys.index("r"));
    await store.readIndexes(shard);
    await admin.srem(keys.indexNames, keys.index("r"));
    await store.commit(shard, fence, [indexed("job/5", 0, "r", "5")], options);
    expect(await names()).toEqual(["q"]);
    await store.close();
  });

  it("rejects a commit whose arguments do not follow the script's layout, changing nothing", async () => {
    const scripts = new StoreScripts(admin);
    const keys = new ShardKeys(prefix, 3);
    await admin.hset(keys.lease, "owner", "node-a", "epoch", 1, "expiresAtMs", Date.now() + 60_000);
    const record = {
      actor: "job/1",
      expectedVersion: 0,
      snapshot: Buffer.from("s"),
      history: [Buffer.from("h")],
      historyCap: 10,
      versionStep: 1,
      constants: null,
      timerAdds: [],
      timerCancels: ["job/1:t"],
      outbox: [],
      counters: [],
      index: [{ key: "queue:A", member: "job-1", score: 5 }],
      dedupeIds: ["e"],
      acks: [{ kind: "inbox" as const, eventId: "e" }],
    };
    const batch = encodeCommit(keys, { owner: "node-a", epoch: 1 }, [record], {
      nowMs: 0,
      dedupeWindowMs: 0,
    });
    const header = batch.args[0] as Buffer;
    // The record's 58 header bytes end the batch header: two doubles, two flags, then ten counts.
    const recordAt = header.length - 58;
    // The batch's counts follow its epoch, first seq and seen score (three doubles), the seen flag (a byte): records, index zsets, those to register.
    const BATCH_REGISTER_COUNT_AT = 8 + 8 + 8 + 1 + 4 + 4;
    const withBatchCount = (offset: number, value: number) => {
      const changed = Buffer.from(header);
      changed.writeUInt32LE(value, offset);
      return changed;
    };
    const withBytes = (...changes: [offset: number, value: number][]) => {
      const changed = Buffer.from(header);
      for (const [offset, value] of changes) changed[recordAt + offset] = value;
      return changed;
    };
    /** A call of one batch whose keys and arguments are as given. */
    const call = (batchKeys: string[], batchArgs: ScriptArg[]) => {
      const { keys: k, args } = encodeCommitCall([{ keys: batchKeys, args: batchArgs }]);
      return [k, args] as [string[], ScriptArg[]];
    };
    const good = { keys: batch.keys, args: batch.args };
    const goodCall = call(good.keys, good.args);
    const malformed: [string, string[], ScriptArg[]][] = [
      ["no arguments", good.keys, []],
      ["no call header", good.keys, good.args],
      [
        "a call header counting two batches",
        goodCall[0],
        [encodeCommitCall([good, good]).args[0]!, ...goodCall[1].slice(1)],
      ],
      ["a torn header", ...call(good.keys, [header.subarray(0, header.length - 1), ...good.args.slice(1)])],
      ["a record's keys missing", ...call([good.keys[0]!, ...good.keys.slice(3)], good.args)],
      ["a shard key missing", ...call(good.keys.slice(0, -1), good.args)],
      ["a key too many", ...call([...good.keys, keys.outbox], good.args)],
      ["a field missing", ...call(good.keys, good.args.slice(0, -1))],
      ["a field too many", ...call(good.keys, [...good.args, "x"])],
      ["a snapshot flag other than 0 or 1", ...call(good.keys, [withBytes([16, 2]), ...good.args.slice(1)])],
      [
        "constants without a snapshot",
        ...call(good.keys, [withBytes([16, 0], [17, 1]), ...good.args.slice(1)]),
      ],
      ["a record without a history entry", ...call(good.keys, [withBytes([22, 0]), ...good.args.slice(1)])],
      [
        "an index change naming no index zset",
        ...call(good.keys, [...good.args.slice(0, -3), 2, "job-1", 5]),
      ],
      ["an index zset missing", ...call(good.keys.slice(0, -1), good.args)],
      [
        "more index zsets to register than index zsets",
        ...call(good.keys, [withBatchCount(BATCH_REGISTER_COUNT_AT, 2), ...good.args.slice(1)]),
      ],
      // A second, malformed batch: the first, well formed, is not written either.
      [
        "a good batch, then a malformed one",
        ...(() => {
          const { keys: k, args } = encodeCommitCall([
            good,
            { keys: good.keys, args: good.args.slice(0, -1) },
          ]);
          return [k, args] as [string[], ScriptArg[]];
        })(),
      ],
    ];
    for (const [what, scriptKeys, args] of malformed) {
      const reply = await scripts.run("commit", scriptKeys, args);
      expect(reply, what).toBe(SCRIPT_ERROR.BAD_ARGUMENT);
    }
    expect(scriptErrorFor(SCRIPT_ERROR.BAD_ARGUMENT, 3, "node-a", 1)).toMatchObject({ code: "BAD_ARGUMENT" });
    const written = (await admin.keys(`${prefix}:{s003}:*`)).filter((key) => key !== keys.lease);
    expect(written).toEqual([]);
    // The same call laid out correctly goes through, so the cases above failed on their layout alone.
    expect(await scripts.run("commit", goodCall[0], goodCall[1])).toEqual([[3]]);
  });

  it("with a replica wait, answers a write only once the replicas have it: none there, the write fails naming the count", async () => {
    // The test Redis has no replicas: WAIT 1 times out with 0, so the lease is not acknowledged.
    const store = await RedisStore.connect({
      url: redisUrl!,
      prefix,
      replicaWait: { replicas: 1, timeoutMs: 50 },
    });
    try {
      await expect(store.acquireLease(7, "node-wait", 5000, Date.now())).rejects.toThrow(
        /write reached 0 of 1 replicas within 50 ms \(WAIT\)/,
      );
      // Reads are not waited for.
      expect(await store.readLease(7)).toMatchObject({ owner: "node-wait" });
    } finally {
      await store.close();
    }
    // WAIT 0 is answered at once: the same write through the waiting path succeeds.
    const noReplicas = await RedisStore.connect({
      url: redisUrl!,
      prefix,
      replicaWait: { replicas: 0, timeoutMs: 50 },
    });
    try {
      expect(await noReplicas.acquireLease(8, "node-wait", 5000, Date.now())).toMatchObject({
        shard: 8,
        epoch: 1,
      });
    } finally {
      await noReplicas.close();
    }
  });
});
