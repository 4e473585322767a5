/**
 * `npm run bench:runtime`: committed transitions per second through the actor
 * runtime on Redis (AOF on), with 1, 100 and 1000 actors in flight, against
 * baselines run in the same process on the same private redis-server:
 *
 *  - raw: plain ioredis, one equivalent Lua write per transition (version
 *    check, snapshot, history list), no xstate, no batching; same actors in
 *    flight as the runtime row it sits next to.
 *  - ceiling, one CAS per transition: the least work a durable transition can
 *    be. 100 jobs in flight (PANDA_BENCH_CEILING_JOBS), each 8 transitions
 *    one after another (a paced job's own durable steps, rounded up), each
 *    transition one Lua compare-and-set: HGET the version, HSET version and a
 *    fixed 200-byte snapshot, HINCRBY a shard counter, XADD a small event
 *    entry to the shard's stream (MAXLEN ~ cap). No encoding, no xstate, no
 *    effects, timers or dedupe.
 *  - ceiling, group commit: the same writes, but one script call carries
 *    every record that is ready when the previous call returns (up to 256,
 *    one call in flight, as a runtime shard commits), looped over inside Lua,
 *    with one HINCRBY per call.
 *
 * Why the ceilings: they are the physical limit of this machine and this
 * Redis for committing a job's transitions durably, so the node's per-job
 * work (runtime here, bench:dispatch end to end) is compared against them,
 * not against a queue. Each prints transitions/s, the jobs/s it equals
 * (transitions/s / 8) and Redis CPU microseconds per transition
 * (used_cpu_sys + used_cpu_user of INFO cpu, before/after the run, over
 * every transition the run made, warm-up included).
 *
 * PANDA_BENCH_SECONDS (5) per run after a warm-up, PANDA_BENCH_ACTORS
 * (1,100,1000) in flight for the runtime and raw rows,
 * PANDA_BENCH_SKIP_BASELINE=1 leaves the raw baseline out,
 * PANDA_BENCH_CEILING=0 the ceilings, PANDA_BENCH_CEILING_JOBS (100).
 */
import { randomBytes } from "node:crypto";
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
const CEILING = process.env.PANDA_BENCH_CEILING !== "0";
const CEILING_JOBS = Number(process.env.PANDA_BENCH_CEILING_JOBS ?? 100);
/** Transitions per job in the ceilings: jobs/s = transitions/s / this. */
const JOB_TRANSITIONS = 8;
/** Most records one group-commit call carries. */
const GROUP_MAX = 256;
/** Entries the ceiling's event stream keeps (MAXLEN ~). */
const STREAM_CAP = 10_000;
const SNAPSHOT_BYTES = 200;

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

/**
 * The ceiling, one call per transition. All keys of a run carry one hash tag
 * (one shard), as a runtime shard's keys do.
 */
const CEILING_LUA = `
-- KEYS[1] actor hash, KEYS[2] shard counters hash, KEYS[3] shard event stream
-- ARGV[1] expected version, ARGV[2] snapshot, ARGV[3] event entry, ARGV[4] stream cap
-- returns the new version, or -1 on a version conflict
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'v', v + 1, 's', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'transitions', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
return v + 1
`;

/** The ceiling as group commit: the records of many actors in one call, each decided on its own. */
const CEILING_GROUP_LUA = `
-- KEYS[1] shard counters hash, KEYS[2] shard event stream, KEYS[2 + i] actor hash of record i
-- ARGV[1] stream cap, then per record i: ARGV[3i - 1] expected version,
--   ARGV[3i] snapshot, ARGV[3i + 1] event entry
-- returns per record the new version, or -1 on a version conflict
local rcall = redis.call
local cap = ARGV[1]
local out = {}
local applied = 0
for i = 1, #KEYS - 2 do
  local key, a = KEYS[i + 2], 3 * i - 1
  local v = tonumber(rcall('HGET', key, 'v') or '0')
  if v ~= tonumber(ARGV[a]) then
    out[i] = -1
  else
    rcall('HSET', key, 'v', v + 1, 's', ARGV[a + 1])
    rcall('XADD', KEYS[2], 'MAXLEN', '~', cap, '*', 'e', ARGV[a + 2])
    applied = applied + 1
    out[i] = v + 1
  end
end
if applied > 0 then rcall('HINCRBY', KEYS[1], 'transitions', applied) end
return out
`;

interface Result {
  transitions: number;
  perSecond: number;
  latency: Samples;
  recordsPerCommit?: number;
  /** Redis CPU microseconds per transition, over every transition of the run (warm-up included). */
  redisUsPerTransition?: number;
  /** This process's CPU microseconds per transition, over every transition of the run (warm-up included). */
  nodeUsPerTransition?: number;
}

/** Seconds of CPU the Redis server has used (INFO cpu: used_cpu_sys + used_cpu_user). */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_sys") + field("used_cpu_user");
}

/**
 * Runs `once` in `actors` loops for the warm-up and DURATION_MS; transitions/s
 * and latency over the measured window, Redis CPU per transition over all of it.
 */
async function runFor(url: string, actors: number, once: (actor: number) => Promise<void>): Promise<Result> {
  const meter = new Redis(url);
  const cpuBefore = await redisCpuSeconds(meter);
  const nodeBefore = process.cpuUsage();
  const latency = new Samples();
  let transitions = 0;
  let total = 0;
  const warmupEnd = performance.now() + Math.min(1000, DURATION_MS / 5);
  const end = warmupEnd + DURATION_MS;
  await Promise.all(
    Array.from({ length: actors }, async (_, actor) => {
      for (;;) {
        const started = performance.now();
        if (started >= end) return;
        await once(actor);
        total++;
        const finished = performance.now();
        if (started >= warmupEnd && finished <= end) {
          latency.add(finished - started);
          transitions++;
        }
      }
    }),
  );
  const node = process.cpuUsage(nodeBefore);
  const cpuAfter = await redisCpuSeconds(meter);
  meter.disconnect();
  return {
    transitions,
    perSecond: (transitions / DURATION_MS) * 1000,
    latency,
    redisUsPerTransition: ((cpuAfter - cpuBefore) * 1e6) / Math.max(1, total),
    nodeUsPerTransition: (node.user + node.system) / Math.max(1, total),
  };
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
  const result = await runFor(url, actors, async (i) => {
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
  const result = await runFor(url, actors, async (i) => {
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

/** The events of a ceiling job's 8 transitions, in order (only their names travel). */
const JOB_EVENTS = ["create", "brokered", "dispatch", "ack", "starting", "running", "ended", "finished"];

/** Commits one record (actor hash key, expected version, snapshot, event entry): its new version, or -1. */
type Commit = (key: string, version: number, snapshot: Buffer, entry: string) => Promise<number>;

type Call = (...args: (string | number | Buffer)[]) => Promise<unknown>;

function command(redis: Redis, name: string, lua: string, numberOfKeys?: number): Call {
  redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
  return (redis as unknown as Record<string, Call>)[name]!.bind(redis);
}

/** One script call per transition. */
function casPerTransition(
  redis: Redis,
  counters: string,
  stream: string,
): { commit: Commit; calls: () => number } {
  const call = command(redis, "ceilingCas", CEILING_LUA, 3);
  let calls = 0;
  return {
    commit: (key, version, snapshot, entry) => {
      calls++;
      return call(key, counters, stream, version, snapshot, entry, STREAM_CAP) as Promise<number>;
    },
    calls: () => calls,
  };
}

interface Pending {
  key: string;
  version: number;
  snapshot: Buffer;
  entry: string;
  resolve(version: number): void;
  reject(err: unknown): void;
}

/**
 * Group commit: records queue up while a call is in flight; when it returns
 * (after the callers it answered have queued their next records) one call
 * carries every record ready, at most GROUP_MAX.
 */
function groupCommit(
  redis: Redis,
  counters: string,
  stream: string,
): { commit: Commit; calls: () => number } {
  const call = command(redis, "ceilingGroup", CEILING_GROUP_LUA);
  let queue: Pending[] = [];
  let inFlight = false;
  let scheduled = false;
  let calls = 0;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  const flush = () => {
    scheduled = false;
    if (inFlight || queue.length === 0) return;
    const batch = queue.length <= GROUP_MAX ? queue : queue.slice(0, GROUP_MAX);
    queue = queue.length <= GROUP_MAX ? [] : queue.slice(GROUP_MAX);
    const args: (string | number | Buffer)[] = [2 + batch.length, counters, stream];
    for (const p of batch) args.push(p.key);
    args.push(STREAM_CAP);
    for (const p of batch) args.push(p.version, p.snapshot, p.entry);
    inFlight = true;
    calls++;
    call(...args).then(
      (out) => {
        inFlight = false;
        const versions = out as number[];
        for (let k = 0; k < batch.length; k++) batch[k]!.resolve(versions[k]!);
        schedule();
      },
      (err: unknown) => {
        inFlight = false;
        for (const p of batch) p.reject(err);
        schedule();
      },
    );
  };
  return {
    commit: (key, version, snapshot, entry) =>
      new Promise<number>((resolve, reject) => {
        queue.push({ key, version, snapshot, entry, resolve, reject });
        schedule();
      }),
    calls: () => calls,
  };
}

/**
 * A ceiling: `jobs` jobs in flight, each JOB_TRANSITIONS transitions one
 * after another, then the next job takes its place. Its keys carry one hash
 * tag, as one runtime shard's do.
 */
async function benchCeiling(url: string, jobs: number, grouped: boolean): Promise<Result> {
  const prefix = `bench:ceil:${grouped ? "group" : "cas"}:${Date.now()}`;
  const tag = `${prefix}:{s0}`;
  const redis = new Redis(url);
  const committer = (grouped ? groupCommit : casPerTransition)(redis, `${tag}:counters`, `${tag}:events`);
  const snapshot = randomBytes(SNAPSHOT_BYTES);
  const slots = Array.from({ length: jobs }, () => ({ job: "", key: "", step: JOB_TRANSITIONS, version: 0 }));
  let nextJob = 0;
  let committed = 0;
  const result = await runFor(url, jobs, async (i) => {
    const slot = slots[i]!;
    if (slot.step === JOB_TRANSITIONS) {
      slot.job = `j${(nextJob++).toString(36)}`;
      slot.key = `${tag}:job:${slot.job}`;
      slot.step = 0;
      slot.version = 0;
    }
    const entry = `${slot.job} ${slot.version + 1} ${JOB_EVENTS[slot.step]}`;
    const next = await committer.commit(slot.key, slot.version, snapshot, entry);
    if (next < 0) throw new Error("ceiling version conflict");
    slot.version = next;
    slot.step++;
    committed++;
  });
  result.recordsPerCommit = committed / Math.max(1, committer.calls());
  await cleanup(url, prefix);
  redis.disconnect();
  return result;
}

type Row = (string | number)[];

function resultRow(
  run: string,
  inFlight: string | number,
  r: Result,
  jobsPerSec: boolean,
  ratio: string,
): Row {
  return [
    run,
    inFlight,
    r.perSecond,
    jobsPerSec ? r.perSecond / JOB_TRANSITIONS : "-",
    r.latency.percentile(50),
    r.latency.percentile(99),
    r.recordsPerCommit ?? 1,
    r.nodeUsPerTransition ?? Number.NaN,
    r.redisUsPerTransition ?? Number.NaN,
    ratio,
  ];
}

/** runtime transitions/s over a baseline's, or "-" when there is no runtime run to set against it. */
function ratio(runtime: Result | undefined, baseline: Result): string {
  return runtime ? `${(runtime.perSecond / baseline.perSecond).toFixed(2)}x` : "-";
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  console.log(
    `runtime benchmark: ${DURATION_MS / 1000}s per run, ${SHARDS} shards, against ${redis.description}\n`,
  );
  const rows: Row[] = [];
  const runtimeAt = new Map<number, Result>();
  try {
    for (const actors of IN_FLIGHT) {
      const runtime = await benchRuntime(redis.url, actors);
      runtimeAt.set(actors, runtime);
      const inFlight = actors.toLocaleString("en-US");
      rows.push(resultRow("runtime", inFlight, runtime, false, ""));
      if (!process.env.PANDA_BENCH_SKIP_BASELINE) {
        const baseline = await benchBaseline(redis.url, actors);
        rows.push(resultRow("raw, 1 Lua write/tx", inFlight, baseline, false, ratio(runtime, baseline)));
      }
    }
    if (CEILING) {
      const runtime = runtimeAt.get(CEILING_JOBS);
      const inFlight = `${CEILING_JOBS} jobs`;
      const cas = await benchCeiling(redis.url, CEILING_JOBS, false);
      rows.push(resultRow("ceiling, 1 CAS/tx", inFlight, cas, true, ratio(runtime, cas)));
      const group = await benchCeiling(redis.url, CEILING_JOBS, true);
      rows.push(resultRow("ceiling, group commit", inFlight, group, true, ratio(runtime, group)));
    }
  } finally {
    await redis.stop();
  }
  console.log(
    formatTable(
      [
        "run",
        "in flight",
        "tx/s",
        "jobs/s",
        "p50 ms",
        "p99 ms",
        "records/commit",
        "node us/tx",
        "redis us/tx",
        "ratio",
      ],
      rows,
    ),
  );
  console.log(
    [
      "",
      "runtime: counter actors of the test registry, one `inc` at a time per actor, through Runtime.send",
      "  (xstate step, encoding, group commit per shard, effects and timers machinery).",
      "raw: plain ioredis, one Lua write per transition (version check, msgpack snapshot, history RPUSH +",
      "  LTRIM), same actors in flight as the runtime row above it.",
      `ceiling, 1 CAS/tx: ${CEILING_JOBS} jobs in flight, ${JOB_TRANSITIONS} transitions each, one Lua compare-and-set`,
      `  per transition (HGET v; HSET v + ${SNAPSHOT_BYTES}-byte snapshot; HINCRBY counter; XADD event MAXLEN ~ ${STREAM_CAP}),`,
      "  nothing encoded: the least work a durable transition can be.",
      `ceiling, group commit: the same writes, one call per batch of every record ready (at most ${GROUP_MAX},`,
      "  one call in flight), looped over in Lua, one HINCRBY per call; records/commit = records per call.",
      `jobs/s = tx/s / ${JOB_TRANSITIONS}. redis us/tx = redis-server CPU (INFO cpu, sys + user) over the run / transitions`,
      "  of the run, warm-up included; node us/tx = this process's CPU (process.cpuUsage) the same way: what the",
      "  client side of a durable transition costs at the least (the ceilings) against the runtime's.",
      "ratio = runtime tx/s / that baseline's tx/s (runtime at the same number in flight; same Redis, same run)",
    ].join("\n"),
  );
}

await main();
process.exit(0);
