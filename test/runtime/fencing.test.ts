import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { actorKeyOf, shardOf } from "../../src/runtime/actor-ref.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { ChildNode } from "../support/child-node.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { testRegistry } from "../support/test-machines.js";

const SHARDS = 4;
const X = { kind: "counter", id: "x" };

/** Polls another process's view with a bound: lease expiry is real time passing, there is no event to await. */
async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("fencing across processes", () => {
  let redisUrl: string;
  let prefix: string;
  let redis: Redis;
  const nodes: ChildNode[] = [];

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    prefix = uniquePrefix("fencing");
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    for (const node of nodes) {
      node.kill("SIGCONT");
      await node.stop();
    }
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it("refuses the commit of a node frozen past its lease; state reflects only the new owner", async () => {
    // A renews rarely: like a node in a long GC pause, it still believes it owns its shards when it wakes.
    const a = new ChildNode({ redisUrl, prefix, shards: SHARDS, leaseMs: 1000, renewEveryMs: 60_000 });
    nodes.push(a);
    const ready = await a.ready;
    expect(ready.shards).toHaveLength(SHARDS);
    expect(await a.send(X, { type: "create" })).toMatchObject({ ok: true, outcome: "committed" });
    expect(await a.send(X, { type: "inc", tag: "A1" })).toMatchObject({ ok: true, outcome: "committed" });

    a.kill("SIGSTOP");
    const b = new ChildNode({ redisUrl, prefix, shards: SHARDS, leaseMs: 1000, renewEveryMs: 200 });
    nodes.push(b);
    await b.ready;
    const shard = shardOf(actorKeyOf(X), SHARDS);
    await until(async () => ((await b.shards()).includes(shard) ? true : undefined), "B to take the shard");
    expect(await b.send(X, { type: "inc", tag: "B1" })).toMatchObject({ ok: true, outcome: "committed" });

    a.kill("SIGCONT");
    const stale = await a.send(X, { type: "inc", tag: "A2" });
    expect(stale).toMatchObject({ ok: false, code: "SHARD_LOST" });

    const client = new Runtime({
      store: await RedisStore.connect({ url: redisUrl, prefix }),
      registry: testRegistry(),
      shardCount: SHARDS,
      clientOnly: true,
    });
    const view = await client.inspect(X);
    expect(view?.context).toMatchObject({ count: 2, seen: "A1,B1," });
    expect(view?.version).toBe(3);
    expect(view?.history.map((h) => h.event.tag ?? h.event.type)).toEqual(["create", "A1", "B1"]);
    const lease = await client.store.readLease(shard);
    expect(lease?.epoch).toBe(2);

    // Having learnt it lost the shard, A hands further events to the owner through the durable inbox.
    expect(await a.send(X, { type: "inc", tag: "A3" })).toMatchObject({ ok: true, outcome: "queued" });
    const after = await until(async () => {
      const v = await client.inspect(X);
      return (v?.context as { seen: string } | undefined)?.seen === "A1,B1,A3," ? v : undefined;
    }, "B to apply A's queued event");
    expect(after?.version).toBe(4);
    await client.store.close();
  });
});
