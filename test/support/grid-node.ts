/**
 * A grid node (runtime + workload kinds + effect handlers) in its own process
 * on Redis, for tests that SIGKILL it at a chosen point. Configured by
 * environment; `PANDA_CRASH_AT` picks the point it kills itself at:
 *   commit:N         right after its N-th commit returns, before that commit's effects run
 *   before-write:N   at its N-th global index write, before the write
 *   after-write:N    right after its N-th global index write, before the outbox acknowledges it
 * On start it sends { ready: true }.
 */
import { mkdtempSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { RedisQueueIndex } from "../../src/store/redis-queue-index.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { Grid } from "../../src/workload/grid.js";

const env = process.env;
const [point, at] = (env.PANDA_CRASH_AT ?? "none:0").split(":") as [string, string];
const crashAt = Number(at);
/** Says which point it reached on stdout (synchronously: nothing after the kill runs), then dies. */
const die = () => {
  writeSync(1, `crash-point ${point}:${crashAt}\n`);
  process.kill(process.pid, "SIGKILL");
};

const store = await RedisStore.connect({ url: env.PANDA_NODE_REDIS_URL!, prefix: env.PANDA_NODE_PREFIX! });
const redisIndex = new RedisQueueIndex(new Redis(env.PANDA_NODE_REDIS_URL!), `${env.PANDA_NODE_PREFIX!}:q`);

let writes = 0;
/** Counts the global index writes (entries and incident records) and dies at the chosen one. */
async function write<T>(run: () => Promise<T>): Promise<T> {
  // Writes overlap: each keeps its own number.
  const n = ++writes;
  if (point === "before-write" && n === crashAt) die();
  const result = await run();
  if (point === "after-write" && n === crashAt) die();
  return result;
}
const index: RedisQueueIndex = Object.create(redisIndex, {
  add: { value: (q: string, m: string, s: number) => write(() => redisIndex.add(q, m, s)) },
  putRecord: {
    value: (q: string, m: string, s: number, r: string) => write(() => redisIndex.putRecord(q, m, s, r)),
  },
});

const grid = new Grid({
  store,
  index,
  storageRoot: mkdtempSync(join(tmpdir(), "panda-grid-node-")),
  config: {},
  runtime: {
    shardCount: Number(env.PANDA_NODE_SHARDS ?? 8),
    leaseMs: Number(env.PANDA_NODE_LEASE_MS ?? 600),
    renewEveryMs: 150,
    sweepEveryMs: 300,
    historyCap: 100_000,
  },
});
let commits = 0;
grid.runtime.onCommit(() => {
  if (point === "commit" && ++commits === crashAt) die();
});
await grid.start();
process.send?.({ ready: true });
process.on("disconnect", () => process.exit(0));
