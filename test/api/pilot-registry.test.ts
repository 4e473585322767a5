import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/runtime/clock.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { type LocalPilots, PilotRegistry } from "../../src/server/pilot-registry.js";
import { RedisQueueIndex } from "../../src/store/redis-queue-index.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";

/** A node's sessions, changed by the test. */
function localPilots(site: string, ids: string[]): LocalPilots & { ids: string[] } {
  return {
    ids,
    pilots() {
      return this.ids.map((pilotId) => ({ pilotId, site, ready: ["primary"], draining: false }));
    },
    dispatchRatePerMin: (s) => (s === site ? 6 : 0),
  };
}

describe("pilot registry on a shared Redis", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function sharedIndex() {
    const redis = new Redis(await getRedisUrl());
    const prefix = uniquePrefix("pilot-registry");
    cleanups.push(async () => {
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    });
    return new RedisQueueIndex(redis, prefix);
  }

  it("lets any node answer for every node's pilots, and forgets a node that stopped", async () => {
    const index = await sharedIndex();
    const options = { publishEveryMs: 60_000, staleAfterMs: 60_000 };
    const localA = localPilots("SITE-A", ["pa-1", "pa-2"]);
    const localB = localPilots("SITE-B", ["pb-1"]);
    const a = new PilotRegistry(index, "node-a", systemClock, localA, silentLogger, options);
    const b = new PilotRegistry(index, "node-b", systemClock, localB, silentLogger, options);
    await a.refresh();
    await b.refresh();
    await a.refresh();
    const seenByA = a.pilots().map((p) => `${p.node}/${p.pilotId}`);
    expect(seenByA.sort()).toEqual(["node-a/pa-1", "node-a/pa-2", "node-b/pb-1"]);
    expect(b.pilots()).toHaveLength(3);
    expect(a.dispatchRatePerMin("SITE-B")).toBe(6);
    expect(
      a
        .nodes()
        .map((n) => n.node)
        .sort(),
    ).toEqual(["node-a", "node-b"]);
    // A change is published at the next refresh, replacing the node's record rather than adding one.
    localB.ids = ["pb-1", "pb-2"];
    await b.refresh();
    await a.refresh();
    expect(a.pilots().filter((p) => p.node === "node-b")).toHaveLength(2);
    expect(await index.size("pilot-registry")).toBe(2);
    // A node that stops takes its record out.
    await b.close();
    await a.refresh();
    expect(a.pilots().map((p) => p.node)).toEqual(["node-a", "node-a"]);
    await a.close();
  });

  it("leaves out and removes a record older than staleAfterMs (a node that died without closing)", async () => {
    const index = await sharedIndex();
    let nowMs = 1_000_000;
    const clock = { ...systemClock, nowMs: () => nowMs };
    const options = { publishEveryMs: 60_000, staleAfterMs: 10_000 };
    const dead = new PilotRegistry(
      index,
      "node-dead",
      clock,
      localPilots("S", ["p-dead"]),
      silentLogger,
      options,
    );
    const live = new PilotRegistry(
      index,
      "node-live",
      clock,
      localPilots("S", ["p-live"]),
      silentLogger,
      options,
    );
    await dead.refresh();
    await live.refresh();
    expect(live.pilots()).toHaveLength(2);
    nowMs += 10_001;
    await live.refresh();
    expect(live.pilots().map((p) => p.pilotId)).toEqual(["p-live"]);
    expect(await index.size("pilot-registry")).toBe(1);
    await live.close();
  });
});
