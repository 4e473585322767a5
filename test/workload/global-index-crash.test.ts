import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerWorkloadKinds } from "../../src/actors/index.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { RedisQueueIndex } from "../../src/store/redis-queue-index.js";
import { RedisStore } from "../../src/store/redis-store.js";
import {
  emptyMade,
  globalEffectsPending,
  indexDisagreement,
  planWave,
} from "../support/global-index-workload.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";

const NODE_SCRIPT = fileURLToPath(new URL("../support/grid-node.ts", import.meta.url));
const SHARDS = 8;
/** Where each node of the run kills itself (see grid-node.ts): after commits, before and after index writes. */
const CRASH_POINTS = [
  "commit:1",
  "before-write:1",
  "after-write:1",
  "commit:3",
  "before-write:2",
  "after-write:3",
  "commit:6",
  "before-write:5",
  "after-write:6",
  "commit:10",
  "before-write:8",
  "after-write:9",
  "commit:15",
  "before-write:11",
  "after-write:12",
];
/** A node that never reaches its point (it ran out of work) is killed after this long. */
const POINT_WAIT_MS = 8_000;

function startNode(redisUrl: string, prefix: string, crashAt: string | null): ChildProcess {
  const child = fork(NODE_SCRIPT, [], {
    execArgv: ["--import", "tsx"],
    env: {
      ...process.env,
      PANDA_NODE_REDIS_URL: redisUrl,
      PANDA_NODE_PREFIX: prefix,
      PANDA_NODE_SHARDS: String(SHARDS),
      PANDA_NODE_LEASE_MS: "600",
      ...(crashAt ? { PANDA_CRASH_AT: crashAt } : {}),
    },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  child.once("close", () => closed.add(child));
  return child;
}

/** True once the node said it reached its crash point (grid-node.ts prints it just before the kill). */
function reachedPoint(child: ChildProcess): () => boolean {
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  return () => out.includes("crash-point ");
}

/** Resolves once the node is gone and its stdout read to the end ("close", not "exit", which may come first). */
function exited(child: ChildProcess): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    if (closed.has(child)) resolve(child.signalCode);
    else child.once("close", (_code, signal) => resolve(signal));
  });
}
const closed = new WeakSet<ChildProcess>();

describe("global indexes across crashes", () => {
  let redisUrl: string;
  let prefix: string;
  let redis: Redis;
  let store: RedisStore;
  let client: Runtime;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    prefix = uniquePrefix("gindex-crash");
    redis = new Redis(redisUrl);
    store = await RedisStore.connect({ url: redisUrl, prefix });
    const registry = registerWorkloadKinds(new KindRegistry());
    client = new Runtime({ store, registry, shardCount: SHARDS, clientOnly: true });
    await client.start();
  });

  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.all(children.map(exited));
    await client.stop();
    await store.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it("agree with the actors after SIGKILLs between commits and index writes", async () => {
    const index = new RedisQueueIndex(redis, `${prefix}:q`);
    const made = emptyMade();
    let reached = 0;
    let leftUnwritten = 0;
    for (const [wave, point] of CRASH_POINTS.entries()) {
      // Sent into the shards' durable inboxes: each node finds the work of the nodes before it too.
      for (const { ref, event, eventId } of planWave(wave, Date.now(), made)) {
        await client.send(ref, event, { eventId });
      }
      const child = startNode(redisUrl, prefix, point);
      children.push(child);
      const saidReached = reachedPoint(child);
      const timer = setTimeout(() => child.kill("SIGKILL"), POINT_WAIT_MS);
      const signal = await exited(child);
      clearTimeout(timer);
      expect(signal).toBe("SIGKILL");
      // A point it never reached (it ran out of work first) leaves it idle until the timer.
      if (!saidReached()) continue;
      reached++;
      if ((await globalEffectsPending(store, SHARDS)) > 0) leftUnwritten++;
    }
    console.log(
      `global index crashes: ${reached} of ${CRASH_POINTS.length} points reached, ${leftUnwritten} kills left index effects unwritten`,
    );
    expect(reached).toBeGreaterThanOrEqual(CRASH_POINTS.length - 2);
    expect(leftUnwritten).toBeGreaterThanOrEqual(5);

    const survivor = startNode(redisUrl, prefix, null);
    children.push(survivor);
    // Polled: the writes happen in the survivor's process.
    const deadline = Date.now() + 60_000;
    let disagreement: string | null = "not checked";
    let pending = -1;
    while (Date.now() < deadline) {
      pending = await globalEffectsPending(store, SHARDS);
      disagreement = await indexDisagreement(client, index, made);
      if (pending === 0 && disagreement === null) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(disagreement).toBeNull();
    expect(pending).toBe(0);
    expect(made.tasks.size).toBe(3 * CRASH_POINTS.length);
  }, 400_000);
});
