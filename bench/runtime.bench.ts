/**
 * `npm run bench:runtime`: committed transitions per second through the actor
 * runtime on Redis (AOF on), with 1, 100 and 1000 actors in flight, against a
 * raw baseline in the same run: plain ioredis, one equivalent Lua write per
 * transition (version check, snapshot, history), no xstate, no batching.
 */
import { Redis } from "ioredis";
import { encode } from "../src/protocol/codec.js";
import { Runtime } from "../src/runtime/runtime.js";
import { RedisStore } from "../src/store/redis-store.js";
import { testRegistry } from "../test/support/test-machines.js";
import { startBenchRedis } from "./support/private-redis.js";
import { formatTable, Samples } from "./support/stats.js";

const DURATION_MS = Number(process.env.PANDA_BENCH_SECONDS ?? 5) * 1000;
const IN_FLIGHT = (process.env.PANDA_BENCH_ACTORS ?? "1,100,1000").split(",").map(Number);
const SHARDS = 64;

const BASELINE_LUA = `
-- KEYS[1] actor hash, KEYS[2] history list
-- ARGV[1] expected version, ARGV[2] snapshot, ARGV[3] history entry, ARGV[4] history cap
-- returns the new version, or -1 on a version conflict
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'v', v + 1, 's', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
return v + 1
`;

interface Result {
  transitions: number;
  perSecond: number;
  latency: Samples;
  recordsPerCommit?: number;
}

async function runFor(actors: number, once: (actor: number) => Promise<void>): Promise<Result> {
  const latency = new Samples();
  let transitions = 0;
  const warmupEnd = performance.now() + Math.min(1000, DURATION_MS / 5);
  const end = warmupEnd + DURATION_MS;
  await Promise.all(
    Array.from({ length: actors }, async (_, actor) => {
      for (;;) {
        const started = performance.now();
        if (started >= end) return;
        await once(actor);
        const finished = performance.now();
        if (started >= warmupEnd && finished <= end) {
          latency.add(finished - started);
          transitions++;
        }
      }
    }),
  );
  return { transitions, perSecond: (transitions / DURATION_MS) * 1000, latency };
}

async function benchRuntime(url: string, actors: number): Promise<Result> {
  const prefix = `bench:rt:${actors}:${Date.now()}`;
  const store = await RedisStore.connect({ url, prefix });
  const runtime = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS });
  await runtime.start();
  let commits = 0;
  let records = 0;
  runtime.onCommit((_shard, n) => {
    commits++;
    records += n;
  });
  await Promise.all(
    Array.from({ length: actors }, (_, i) =>
      runtime.send({ kind: "counter", id: `a${i}` }, { type: "create" }),
    ),
  );
  commits = 0;
  records = 0;
  const result = await runFor(actors, async (i) => {
    await runtime.send({ kind: "counter", id: `a${i}` }, { type: "inc" });
  });
  result.recordsPerCommit = records / Math.max(1, commits);
  await runtime.stop();
  await cleanup(url, prefix);
  await store.close();
  return result;
}

async function benchBaseline(url: string, actors: number): Promise<Result> {
  const prefix = `bench:raw:${actors}:${Date.now()}`;
  const redis = new Redis(url);
  redis.defineCommand("transition", { numberOfKeys: 2, lua: BASELINE_LUA });
  const versions = new Array<number>(actors).fill(0);
  const counts = new Array<number>(actors).fill(0);
  const call = (
    redis as unknown as { transition(...args: (string | number | Buffer)[]): Promise<number> }
  ).transition.bind(redis);
  const result = await runFor(actors, async (i) => {
    counts[i]!++;
    const snapshot = encode({
      k: "counter",
      mv: 1,
      s: { value: "counting", status: "active", context: { count: counts[i] } },
    });
    const history = encode({
      v: versions[i]! + 1,
      at: Date.now(),
      id: "x",
      event: { type: "inc" },
      from: "counting",
      to: "counting",
      cause: "send",
    });
    const next = await call(
      `${prefix}:{a${i}}:actor`,
      `${prefix}:{a${i}}:history`,
      versions[i]!,
      snapshot,
      history,
      200,
    );
    if (next < 0) throw new Error("baseline version conflict");
    versions[i] = next;
  });
  await cleanup(url, prefix);
  redis.disconnect();
  return result;
}

async function cleanup(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  console.log(
    `runtime benchmark: ${DURATION_MS / 1000}s per run, ${SHARDS} shards, against ${redis.description}\n`,
  );
  const rows: (string | number)[][] = [];
  try {
    for (const actors of IN_FLIGHT) {
      const runtime = await benchRuntime(redis.url, actors);
      const baseline = process.env.PANDA_BENCH_SKIP_BASELINE
        ? runtime
        : await benchBaseline(redis.url, actors);
      rows.push([
        actors,
        runtime.perSecond,
        runtime.latency.percentile(50),
        runtime.latency.percentile(99),
        runtime.recordsPerCommit ?? 0,
        baseline.perSecond,
        baseline.latency.percentile(50),
        baseline.latency.percentile(99),
        `${(runtime.perSecond / baseline.perSecond).toFixed(2)}x`,
      ]);
    }
  } finally {
    await redis.stop();
  }
  console.log(
    formatTable(
      [
        "in flight",
        "runtime tx/s",
        "p50 ms",
        "p99 ms",
        "records/commit",
        "baseline tx/s",
        "p50 ms",
        "p99 ms",
        "ratio",
      ],
      rows,
    ),
  );
  console.log("\nratio = runtime transitions/s / baseline transitions/s (same Redis, same run)");
}

await main();
process.exit(0);
