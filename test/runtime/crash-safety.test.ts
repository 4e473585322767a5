import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/runtime.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { ChildNode } from "../support/child-node.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { testRegistry } from "../support/test-machines.js";

const SHARDS = 8;
const ACTORS = 200;
const INCS = 240;
const PARTNER_PINGS = 4;
const KILLS = 12;

/** A seeded generator, so a failing run can be replayed with the same kill moments. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Planned {
  actor: number;
  event: Record<string, unknown>;
  eventId: string;
}

/** Wave w holds event w of every actor; waves are sent in order, so each actor's events are too. */
function planWaves(): Planned[][] {
  const waves: Planned[][] = [];
  const perActor: Record<string, unknown>[][] = [];
  for (let i = 0; i < ACTORS; i++) {
    const events: Record<string, unknown>[] = [
      { type: "create", input: { partner: `c${(i + 1) % ACTORS}` } },
    ];
    for (let k = 0; k < INCS; k++) {
      events.push({ type: "inc", by: k + 1, tag: `i${k}` });
      if (k % 60 === 1) events.push({ type: "pingPartner" });
      if (k === 120) events.push({ type: "arm", delayMs: 100 + ((i * 37) % 500) });
    }
    perActor.push(events);
  }
  const longest = Math.max(...perActor.map((e) => e.length));
  for (let w = 0; w < longest; w++) {
    waves.push(
      perActor.flatMap((events, actor) =>
        events[w] ? [{ actor, event: events[w]!, eventId: `ev-${actor}-${w}` }] : [],
      ),
    );
  }
  return waves;
}

describe("crash safety", () => {
  let redisUrl: string;
  let prefix: string;
  let redis: Redis;
  let store: RedisStore;
  let client: Runtime;
  const nodes: ChildNode[] = [];

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    prefix = uniquePrefix("crash");
    redis = new Redis(redisUrl);
    store = await RedisStore.connect({ url: redisUrl, prefix });
    client = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS, clientOnly: true });
    await client.start();
  });

  afterAll(async () => {
    for (const node of nodes) await node.stop();
    await client.stop();
    await store.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it("loses nothing and doubles nothing across repeated SIGKILLs", async () => {
    const rand = random(20261124);
    const waves = planWaves();
    const expectedVersion = 1 + INCS + PARTNER_PINGS + 1 + 1 + PARTNER_PINGS;

    let sending = true;
    let kills = 0;
    let interruptedKills = 0;
    /** Resolves when the sender has handed over its next wave: a kill then strikes with a wave in hand. */
    let waveSent: () => void = () => {};
    const nextWaveSent = () =>
      new Promise<void>((resolve) => {
        waveSent = resolve;
      });
    /** A killer waits for a wave: the sender sends the next one even if it is ahead of the kills. */
    let killerWaiting = false;
    // The stream is spread over the kill cycles, so every node is killed while events keep coming.
    const wavesPerKill = Math.ceil(waves.length / KILLS);
    const sender = (async () => {
      for (const [index, wave] of waves.entries()) {
        // Paced to the kills; a killer waiting to strike gets its wave at once.
        while (kills < Math.min(KILLS, Math.floor(index / wavesPerKill)) && !killerWaiting) {
          await new Promise((r) => setTimeout(r, 20));
        }
        killerWaiting = false;
        await Promise.all(
          wave.map((p) =>
            client.send({ kind: "counter", id: `c${p.actor}` }, p.event, { eventId: p.eventId }),
          ),
        );
        waveSent();
        // A steady stream, so kills strike while the node is committing, not while it idles.
        await new Promise((r) => setTimeout(r, 40 + rand() * 40));
      }
      sending = false;
      waveSent();
    })();

    // Short leases so each restarted node takes over quickly.
    const startNode = () =>
      new ChildNode({ redisUrl, prefix, shards: SHARDS, leaseMs: 600, renewEveryMs: 150, sweepEveryMs: 300 });
    /** Durable work not yet done: queued events, undelivered effects and (optionally) pending timers. */
    const workLeftBehind = async (countTimers = false) => {
      for (let s = 0; s < SHARDS; s++) {
        if ((await store.readInbox(s, 0, 1)).length > 0 || (await store.readOutbox(s, 1)).length > 0)
          return true;
        if (countTimers && (await store.nextTimerDueMs(s)) !== null) return true;
      }
      return false;
    };
    while (kills < KILLS || sending) {
      const node = startNode();
      nodes.push(node);
      await node.ready;
      // Kill only once the node has taken shards over (the last one's leases must expire first): mid-work.
      const deadline = Date.now() + 10_000;
      while ((await node.shards()).length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, rand() * 400));
      // Strike within a few milliseconds of a wave being queued, while the node works through it: a
      // node that keeps up idles between waves, and a kill then would test nothing.
      if (sending) {
        const wave = nextWaveSent();
        killerWaiting = true;
        await wave;
      }
      await new Promise((r) => setTimeout(r, rand() * 4));
      node.kill("SIGKILL");
      await node.exited;
      kills++;
      // Work left behind means the kill struck mid-stream, not while the node idled.
      if (await workLeftBehind()) interruptedKills++;
    }
    await sender;
    expect(kills).toBeGreaterThanOrEqual(10);
    console.log(`crash safety: ${kills} SIGKILLs, ${interruptedKills} of them with work in flight`);
    expect(interruptedKills).toBeGreaterThanOrEqual(3);

    const survivor = startNode();
    nodes.push(survivor);
    await survivor.ready;

    // Quiescent when every inbox, outbox and timer set is empty and every actor reached its final count.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const busy = await workLeftBehind(true);
      if (!busy) {
        const views = await Promise.all(
          Array.from({ length: ACTORS }, (_, i) => client.inspect({ kind: "counter", id: `c${i}` })),
        );
        if (views.every((v) => v?.version === expectedVersion)) break;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    const incSum = (INCS * (INCS + 1)) / 2;
    const tags = Array.from({ length: INCS }, (_, k) => `i${k},`).join("");
    for (let i = 0; i < ACTORS; i++) {
      const view = await client.inspect({ kind: "counter", id: `c${i}` });
      expect(view, `c${i}`).not.toBeNull();
      expect({ id: `c${i}`, state: view!.state, ...(view!.context as object) }).toMatchObject({
        id: `c${i}`,
        state: "counting",
        count: incSum,
        seen: tags,
        pings: PARTNER_PINGS,
        ticks: 1,
      });
      expect(view!.version).toBe(expectedVersion);
      const history = view!.history;
      expect(history).toHaveLength(expectedVersion);
      expect(new Set(history.map((h) => h.id)).size).toBe(history.length);
      expect(history.map((h) => h.v)).toEqual(Array.from({ length: expectedVersion }, (_, k) => k + 1));
      const fromInbox = history.filter((h) => h.id.startsWith("ev-")).map((h) => Number(h.id.split("-")[2]));
      expect(fromInbox).toEqual([...fromInbox].sort((a, b) => a - b));
      expect(history.filter((h) => h.cause === "timer")).toHaveLength(1);
    }
  }, 240_000);
});
