/**
 * `npm run bench:dispatch`: late binding end to end on Redis (AOF on), one
 * server node and protocol-level pilots in this process, against BullMQ on
 * the same Redis in the same run.
 *
 *  (a) latency at a paced rate: panda-actors from the commit of a job's
 *      transition to `activated` (its `queue.add` effect starts in the same
 *      tick) to the `job.push` decoded by a pilot; BullMQ from `queue.add()`
 *      to the worker's processor starting. Pilots answer a push with
 *      `job.ended finished` and `pilot.ready` (BullMQ's processor returns).
 *  (b) throughput: a batch submitted at once, submit -> every job finished;
 *      pilots report the whole lifecycle (ack, starting, running, ended).
 *      BullMQ: addBulk -> every job completed, worker concurrency = pilots.
 *
 * A paced run that falls more than PANDA_BENCH_MAX_BACKLOG jobs behind stops
 * offering work (and says so), so that its backlog drains in bounded time and
 * does not leak into the next run.
 *
 * PANDA_BENCH_SECONDS (5) per paced run after a 1 s warm-up,
 * PANDA_BENCH_RATES (1000,5000), PANDA_BENCH_PILOTS (200),
 * PANDA_BENCH_JOBS (5000) and PANDA_BENCH_TASK_JOBS (100, jobs per task) for
 * the batch, PANDA_BENCH_MAX_BACKLOG (2000), PANDA_BENCH_SKIP_BASELINE=1 to
 * leave BullMQ out.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { type ConnectedTestPilot, connectTestPilot } from "../src/gateway/test-client.js";
import { type ServerNode, startServerNode } from "../src/server/server.js";
import { type BenchRedis, startBenchRedis } from "./support/private-redis.js";
import { formatTable, Samples } from "./support/stats.js";

const DURATION_MS = Number(process.env.PANDA_BENCH_SECONDS ?? 5) * 1000;
const RATES = (process.env.PANDA_BENCH_RATES ?? "1000,5000").split(",").filter(Boolean).map(Number);
const PILOTS = Number(process.env.PANDA_BENCH_PILOTS ?? 200);
const BATCH_JOBS = Number(process.env.PANDA_BENCH_JOBS ?? 5000);
const TASK_JOBS = Number(process.env.PANDA_BENCH_TASK_JOBS ?? 100);
const MAX_BACKLOG = Number(process.env.PANDA_BENCH_MAX_BACKLOG ?? 2000);
const SKIP_BASELINE = Boolean(process.env.PANDA_BENCH_SKIP_BASELINE);
const WARMUP_MS = 1000;
/** How long a paced run may take to work off its backlog once it stops offering work. */
const DRAIN_MS = 30_000;
/** How long the batch may take to finish. */
const BATCH_LIMIT_MS = 90_000;
/** The whole benchmark gives up (and cleans up) after this, whatever happens. */
const DEADLINE_MS = 10 * 60_000;
const SITE = "BENCH";
const USER = "bench";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** How many of `times` (performance.now() values) fall in [from, to). */
function inWindow(times: Iterable<number>, from: number, to: number): number {
  let n = 0;
  for (const t of times) if (t >= from && t < to) n++;
  return n;
}

/**
 * CPU seconds spent by this process and by the Redis server, and commands
 * Redis ran: costs per job that hold whatever else the machine runs.
 */
class CpuMeter {
  constructor(private readonly redis: Redis) {}

  async read(): Promise<{ node: number; redis: number; commands: number; byCommand: Map<string, number> }> {
    const info = await this.redis.info("all");
    const byCommand = new Map<string, number>();
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand.set(m[1]!, Number(m[2]));
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
    const usage = process.cpuUsage();
    return {
      node: (usage.user + usage.system) / 1e6,
      redis: field("used_cpu_sys") + field("used_cpu_user"),
      // Less the INFO calls of the meter itself.
      commands: field("total_commands_processed") - 1,
      byCommand,
    };
  }

  /** Runs `work` and adds the CPU milliseconds per job it spent to its result. */
  async perJob<R extends { jobs: number }>(work: () => Promise<R>): Promise<R & Cost> {
    const before = await this.read();
    const result = await work();
    const after = await this.read();
    const jobs = Math.max(1, result.jobs);
    return {
      ...result,
      nodeMsPerJob: ((after.node - before.node) * 1000) / jobs,
      redisMsPerJob: ((after.redis - before.redis) * 1000) / jobs,
      redisCommandsPerJob: (after.commands - before.commands) / jobs,
      commandsPerJob: [...after.byCommand]
        .map(([name, calls]) => [name, (calls - (before.byCommand.get(name) ?? 0)) / jobs] as const)
        .filter(([name, perJob]) => perJob >= 0.05 && name !== "info")
        .sort((a, b) => b[1] - a[1]),
    };
  }
}

interface Cost {
  nodeMsPerJob: number;
  redisMsPerJob: number;
  redisCommandsPerJob: number;
  /** Redis commands per job by name (Lua-internal calls included), most first. */
  commandsPerJob: (readonly [string, number])[];
}

interface PacedResult {
  latency: Samples;
  jobs: number;
  /** Jobs received (push, processor) per second in the measured window. */
  receivedPerSec: number;
  /** Share of the pacing time this process's event loop was busy. */
  busy: number;
  /** Set when the run fell MAX_BACKLOG jobs behind: seconds after the start when it stopped offering work. */
  stoppedAfterSec: number | null;
  /** Jobs not received within DRAIN_MS after the run stopped offering work. */
  missing: number;
}

interface ThroughputResult {
  jobs: number;
  seconds: number;
  perSecond: number;
  missing: number;
}

/**
 * Calls `create(n)` so that `rate` jobs a second are created for `ms`, in
 * ticks of about a millisecond (a late tick creates what is due); stops early
 * when `behind(created)` says the system under test fell too far behind.
 */
async function pace(
  rate: number,
  ms: number,
  create: (n: number) => void,
  behind: (created: number) => boolean,
): Promise<{ created: number; stoppedAt: number | null }> {
  const started = performance.now();
  let created = 0;
  for (;;) {
    const now = performance.now();
    if (now - started >= ms) return { created, stoppedAt: null };
    if (behind(created)) return { created, stoppedAt: now };
    const due = Math.floor(((now - started) / 1000) * rate) - created;
    if (due > 0) {
      create(due);
      created += due;
    }
    await sleep(1);
  }
}

/**
 * One paced run: `create` makes jobs, `startedAt`/`receivedAt` are filled by
 * the system's hooks (performance.now() per job key), `finished` counts done jobs.
 */
async function pacedRun<K>(
  rate: number,
  create: (n: number) => void,
  probes: {
    startedAt: Map<K, number>;
    receivedAt: Map<K, number>;
    finished: () => number;
  },
): Promise<PacedResult> {
  const started = performance.now();
  const windowStart = started + WARMUP_MS;
  const elu = performance.eventLoopUtilization();
  const { created, stoppedAt } = await pace(
    rate,
    WARMUP_MS + DURATION_MS,
    create,
    (created) => created - probes.receivedAt.size > MAX_BACKLOG,
  );
  const busy = performance.eventLoopUtilization(elu).utilization;
  await until(() => probes.finished() >= created, DRAIN_MS);
  // A run stopped during its warm-up is measured whole: there is nothing else to measure.
  const windowEnd = stoppedAt ?? windowStart + DURATION_MS;
  const from = windowEnd > windowStart ? windowStart : started;
  const latency = new Samples();
  for (const [key, at] of probes.startedAt) {
    const received = probes.receivedAt.get(key);
    if (at >= from && at < windowEnd && received !== undefined) latency.add(received - at);
  }
  return {
    latency,
    jobs: created,
    receivedPerSec: (inWindow(probes.receivedAt.values(), from, windowEnd) / (windowEnd - from)) * 1000,
    busy,
    stoppedAfterSec: stoppedAt === null ? null : (stoppedAt - started) / 1000,
    missing: created - probes.receivedAt.size,
  };
}

// ---------------------------------------------------------------- panda-actors

type PilotMode = "ended-only" | "lifecycle";

/** What the pilots and the runtime tell about the jobs of the current run. */
class Tracker {
  readonly activatedAt = new Map<string, number>();
  readonly pushedAt = new Map<string, number>();
  finished = 0;
  /** Committed transitions of every actor (job, task, dataset, site, ...) since the last reset. */
  transitions = 0;
  errors = 0;
  lastError = "";
  prefix = "-";
  mode: PilotMode = "ended-only";

  reset(prefix: string, mode: PilotMode): void {
    this.activatedAt.clear();
    this.pushedAt.clear();
    this.finished = 0;
    this.transitions = 0;
    this.prefix = prefix;
    this.mode = mode;
  }
}

interface BenchGrid {
  node: ServerNode;
  pilots: ConnectedTestPilot[];
  tracker: Tracker;
}

async function startGrid(redis: BenchRedis, dataDir: string): Promise<BenchGrid> {
  const pilotToken = `pilot-${randomBytes(12).toString("hex")}`;
  const node = await startServerNode({
    port: 0,
    dataDir,
    redisUrl: redis.url,
    redisPrefix: `bench:dispatch:${Date.now()}`,
    sites: [
      {
        name: SITE,
        resources: {
          slots: PILOTS,
          memoryPerSlotMb: 4000,
          diskMb: 1_000_000,
          walltimeSec: { min: 0, max: 86_400 },
        },
      },
    ],
    tokens: [
      { token: `user-${randomBytes(12).toString("hex")}`, kind: "user", user: USER, role: "user" },
      { token: pilotToken, kind: "pilot", site: SITE },
    ],
    maxActiveJobsPerUser: 1_000_000,
    // Brokerage's queue cap (queued > 2 x running) would hold a batch back: this measures dispatch, not the cap.
    grid: { brokerage: { queueCapMin: 10_000_000 } },
    // These pilots end a job every few ms; the per-session frame rate limit is meant for real payloads.
    gateway: { ratePerSec: 1_000_000, burst: 1_000_000 },
  });
  const tracker = new Tracker();
  node.grid.runtime.onTransitions((transitions) => {
    const now = performance.now();
    for (const t of transitions) {
      if (!t.entry.refused) tracker.transitions++;
      if (!t.actor.startsWith("job/") || t.entry.refused) continue;
      const jobId = t.actor.slice(4);
      if (!jobId.startsWith(tracker.prefix)) continue;
      if (t.entry.to === "activated") tracker.activatedAt.set(jobId, now);
      else if (t.entry.to === "finished") tracker.finished++;
    }
  });
  const pilots: ConnectedTestPilot[] = [];
  for (let i = 0; i < PILOTS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, PILOTS - i) }, (_, j) =>
        connectTestPilot(`${node.url}/pilot`, pilotToken, {
          site: SITE,
          hostname: `bench-wn${i + j}`,
          cores: 1,
          memoryMb: 4000,
          diskMb: 100_000,
          walltimeLeftSec: 86_400,
          multitask: false,
          agent: "panda-bench",
        }),
      ),
    );
    pilots.push(...batch);
  }
  for (const pilot of pilots) void drivePilot(pilot, tracker);
  await until(() => node.dispatcher.connectedPilots().every((p) => p.ready.length > 0), 10_000);
  return { node, pilots, tracker };
}

/** A protocol-level pilot whose payloads take no time: records each push, reports, asks for the next. */
async function drivePilot(pilot: ConnectedTestPilot, tracker: Tracker): Promise<void> {
  pilot.send({ type: "pilot.ready", thread: "primary" });
  for await (const frame of pilot) {
    if (frame.type === "error") {
      tracker.errors++;
      tracker.lastError = `${frame.code} ${frame.message}`;
      continue;
    }
    if (frame.type !== "job.push") continue;
    const { jobId, attempt } = frame.job;
    tracker.pushedAt.set(jobId, performance.now());
    if (tracker.mode === "lifecycle") {
      pilot.send({ type: "job.ack", jobId, attempt });
      pilot.send({ type: "job.status", jobId, attempt, state: "starting" });
      pilot.send({ type: "job.status", jobId, attempt, state: "running" });
    }
    pilot.send({ type: "job.ended", jobId, attempt, outcome: "finished", exitCode: 0, outputs: [] });
    pilot.send({ type: "pilot.ready", thread: frame.thread });
  }
}

let taskSeq = 0;

/** Submits `jobs` instant jobs as tasks of at most TASK_JOBS jobs, without waiting. */
function submitJobs(node: ServerNode, prefix: string, jobs: number, failures: string[]): Promise<unknown>[] {
  const submitted: Promise<unknown>[] = [];
  for (let left = jobs; left > 0; left -= TASK_JOBS) {
    const taskId = `${prefix}${(taskSeq++).toString(36)}`;
    submitted.push(
      node.grid
        .submit(
          { taskId, jobs: Math.min(TASK_JOBS, left), type: "production", payload: { command: ["true"] } },
          USER,
        )
        .catch((err: unknown) => failures.push((err as Error).message)),
    );
  }
  return submitted;
}

function pandaPaced(grid: BenchGrid, rate: number, failures: string[]): Promise<PacedResult> {
  const { node, tracker } = grid;
  const prefix = `lat${rate}-`;
  tracker.reset(prefix, "ended-only");
  return pacedRun(rate, (n) => submitJobs(node, prefix, n, failures), {
    startedAt: tracker.activatedAt,
    receivedAt: tracker.pushedAt,
    finished: () => tracker.finished,
  });
}

async function pandaThroughput(grid: BenchGrid, failures: string[]): Promise<ThroughputResult> {
  const { node, tracker } = grid;
  tracker.reset("batch-", "lifecycle");
  const started = performance.now();
  await Promise.all(submitJobs(node, "batch-", BATCH_JOBS, failures));
  await until(() => tracker.finished >= BATCH_JOBS, BATCH_LIMIT_MS);
  const seconds = (performance.now() - started) / 1000;
  return {
    jobs: tracker.finished,
    seconds,
    perSecond: tracker.finished / seconds,
    missing: BATCH_JOBS - tracker.finished,
  };
}

// ---------------------------------------------------------------- BullMQ

/** A queue and a worker of PILOTS concurrency; finished jobs are removed (BullMQ's fast setting). */
async function bullPair(url: string, name: string, onStart: (i: number) => void) {
  const parsed = new URL(url);
  const connection = { host: parsed.hostname, port: Number(parsed.port), maxRetriesPerRequest: null };
  const prefix = "bench-bull";
  const queue = new Queue(name, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  let completed = 0;
  const worker = new Worker(
    name,
    async (job) => {
      onStart((job.data as { i: number }).i);
    },
    { connection, prefix, concurrency: PILOTS },
  );
  worker.on("completed", () => {
    completed++;
  });
  await queue.waitUntilReady();
  await worker.waitUntilReady();
  return {
    queue,
    get completed() {
      return completed;
    },
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}

async function bullPaced(url: string, rate: number, failures: string[]): Promise<PacedResult> {
  const addedAt = new Map<number, number>();
  const startedAt = new Map<number, number>();
  const pair = await bullPair(url, `lat-${rate}-${Date.now()}`, (i) => startedAt.set(i, performance.now()));
  try {
    return await pacedRun(
      rate,
      (n) => {
        for (let k = 0; k < n; k++) {
          const i = addedAt.size;
          addedAt.set(i, performance.now());
          pair.queue.add("job", { i }).catch((err: unknown) => failures.push((err as Error).message));
        }
      },
      { startedAt: addedAt, receivedAt: startedAt, finished: () => pair.completed },
    );
  } finally {
    await pair.close();
  }
}

async function bullThroughput(url: string, failures: string[]): Promise<ThroughputResult> {
  const pair = await bullPair(url, `batch-${Date.now()}`, () => {});
  try {
    const started = performance.now();
    const adds: Promise<unknown>[] = [];
    for (let i = 0; i < BATCH_JOBS; i += TASK_JOBS) {
      const chunk = Array.from({ length: Math.min(TASK_JOBS, BATCH_JOBS - i) }, (_, k) => ({
        name: "job",
        data: { i: i + k },
      }));
      adds.push(pair.queue.addBulk(chunk).catch((err: unknown) => failures.push((err as Error).message)));
    }
    await Promise.all(adds);
    await until(() => pair.completed >= BATCH_JOBS, BATCH_LIMIT_MS);
    const seconds = (performance.now() - started) / 1000;
    const jobs = pair.completed;
    return { jobs, seconds, perSecond: jobs / seconds, missing: BATCH_JOBS - jobs };
  } finally {
    await pair.close();
  }
}

// ---------------------------------------------------------------- report

type Row = (string | number)[];

function ratio(numerator: number, denominator: number): string {
  const r = numerator / denominator;
  return Number.isFinite(r) && denominator > 0 ? `${r.toFixed(2)}x` : "-";
}

/** A row of one measure for both systems; `better` says which way the ratio is taken (above 1x: ours ahead). */
function row(label: string, ours: number, bull: number | null, better: "lower" | "higher" | null): Row {
  if (bull === null) return [label, ours, "-", "-"];
  const r = better === "lower" ? ratio(bull, ours) : better === "higher" ? ratio(ours, bull) : "";
  return [label, ours, bull, r];
}

function pacedRows(rate: number, ours: PacedResult & Cost, bull: (PacedResult & Cost) | null): Row[] {
  const at = `${rate.toLocaleString("en-US")}/s`;
  const p = (r: PacedResult, q: number) => r.latency.percentile(q);
  return [
    row(`${at} latency p50 ms`, p(ours, 50), bull && p(bull, 50), "lower"),
    row(`${at} latency p99 ms`, p(ours, 99), bull && p(bull, 99), "lower"),
    row(`${at} latency max ms`, p(ours, 100), bull && p(bull, 100), "lower"),
    row(`${at} received jobs/s`, ours.receivedPerSec, bull?.receivedPerSec ?? null, "higher"),
    [`${at} samples (not received)`, samples(ours), bull ? samples(bull) : "-", ""],
    [`${at} event loop busy`, percent(ours.busy), bull ? percent(bull.busy) : "-", ""],
    row(`${at} node CPU ms/job`, ours.nodeMsPerJob, bull?.nodeMsPerJob ?? null, "lower"),
    row(`${at} redis CPU ms/job`, ours.redisMsPerJob, bull?.redisMsPerJob ?? null, "lower"),
    row(`${at} redis commands/job`, ours.redisCommandsPerJob, bull?.redisCommandsPerJob ?? null, "lower"),
  ];
}

/** What a job costs us in durable state changes; a BullMQ job has no such figure. */
function transitionsRow(label: string, transitions: number, jobs: number): Row {
  return [`${label} committed transitions/job`, transitions / Math.max(1, jobs), "-", ""];
}

function samples(r: PacedResult): string {
  return `${r.latency.count.toLocaleString("en-US")} (${r.missing})`;
}

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function verdict(name: string, rate: number, r: PacedResult): string {
  if (r.stoppedAfterSec !== null) {
    return (
      `${name} at ${rate}/s did NOT keep up: it fell ${MAX_BACKLOG} jobs behind after ` +
      `${r.stoppedAfterSec.toFixed(1)} s (received ${Math.round(r.receivedPerSec)}/s), so the run stopped ` +
      "offering work there; its latency is mostly queueing"
    );
  }
  if (r.missing > 0)
    return `${name} at ${rate}/s: ${r.missing} jobs not received ${DRAIN_MS / 1000} s after the run`;
  if (r.receivedPerSec < rate * 0.95)
    return `${name} at ${rate}/s received only ${Math.round(r.receivedPerSec)}/s`;
  return `${name} at ${rate}/s kept up`;
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  const dataDir = mkdtempSync(join(tmpdir(), "panda-bench-dispatch-"));
  const abandon = (why: string) => {
    console.error(`bench:dispatch: ${why}; cleaning up`);
    void redis.stop().finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(1);
    });
  };
  const deadline = setTimeout(() => abandon(`gave up after ${DEADLINE_MS / 1000} s`), DEADLINE_MS);
  deadline.unref();
  process.once("SIGINT", () => abandon("interrupted"));
  console.log(
    `dispatch benchmark: ${PILOTS} pilots on one site, ${DURATION_MS / 1000} s per paced run after a ` +
      `${WARMUP_MS / 1000} s warm-up, a batch of ${BATCH_JOBS.toLocaleString("en-US")} jobs in tasks of ` +
      `${TASK_JOBS}, against ${redis.description}\n`,
  );
  const failures: string[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  const meterClient = new Redis(redis.url);
  const cpu = new CpuMeter(meterClient);
  let grid: BenchGrid | null = null;
  try {
    grid = await startGrid(redis, dataDir);
    const bindMs = new Samples();
    grid.node.dispatcher.onDispatch((_site, ms) => bindMs.add(ms));
    for (const rate of RATES) {
      // BullMQ first: whatever backlog our run leaves cannot slow it down.
      const bull = SKIP_BASELINE ? null : await cpu.perJob(() => bullPaced(redis.url, rate, failures));
      const ours = await cpu.perJob(() => pandaPaced(grid!, rate, failures));
      rows.push(...pacedRows(rate, ours, bull));
      rows.push(transitionsRow(`${rate.toLocaleString("en-US")}/s`, grid.tracker.transitions, ours.jobs));
      notes.push(verdict("panda-actors", rate, ours));
      if (bull) notes.push(verdict("BullMQ", rate, bull));
    }
    const bull = SKIP_BASELINE ? null : await cpu.perJob(() => bullThroughput(redis.url, failures));
    const ours = await cpu.perJob(() => pandaThroughput(grid!, failures));
    const batchTransitions = grid.tracker.transitions;
    const batch = `batch of ${BATCH_JOBS.toLocaleString("en-US")}`;
    rows.push(row(`${batch} jobs/s`, ours.perSecond, bull?.perSecond ?? null, "higher"));
    rows.push([
      `${batch} seconds (missing)`,
      `${ours.seconds.toFixed(2)} (${ours.missing})`,
      bull ? `${bull.seconds.toFixed(2)} (${bull.missing})` : "-",
      "",
    ]);
    rows.push(transitionsRow(batch, batchTransitions, ours.jobs));
    rows.push(row(`${batch} node CPU ms/job`, ours.nodeMsPerJob, bull?.nodeMsPerJob ?? null, "lower"));
    rows.push(row(`${batch} redis CPU ms/job`, ours.redisMsPerJob, bull?.redisMsPerJob ?? null, "lower"));
    rows.push(
      row(
        `${batch} redis commands/job`,
        ours.redisCommandsPerJob,
        bull?.redisCommandsPerJob ?? null,
        "lower",
      ),
    );
    notes.push(
      `batch redis commands/job by command: ${ours.commandsPerJob
        .map(([name, perJob]) => `${name} ${perJob.toFixed(1)}`)
        .join(", ")}`,
    );
    notes.push(
      `dispatcher bind (queue read -> dispatch commit -> push sent): p50 ${bindMs.percentile(50).toFixed(2)} ms, ` +
        `p99 ${bindMs.percentile(99).toFixed(2)} ms over ${bindMs.count.toLocaleString("en-US")} pushes`,
    );
    notes.push(
      `errors answered to pilots: ${grid.tracker.errors}` +
        (grid.tracker.errors > 0 ? ` (last: ${grid.tracker.lastError})` : ""),
    );
  } finally {
    if (grid) {
      await Promise.all(grid.pilots.map((p) => p.close()));
      await grid.node.close();
    }
    meterClient.disconnect();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
    clearTimeout(deadline);
  }
  console.log(formatTable(["measure", "panda-actors", "BullMQ", "ratio"], rows));
  console.log(
    [
      "",
      "latency: panda-actors from the commit of a job's transition to activated (runtime.onTransitions; its",
      "  queue.add effect starts in the same tick) to job.push decoded by the pilot; BullMQ from queue.add()",
      "  called to its processor starting. One process, performance.now(). Pilots answer a push with",
      "  job.ended finished and pilot.ready. Jobs are created in ~1 ms ticks: grid.submit of tasks of the jobs",
      "  due (at most " + TASK_JOBS + " each), queue.add per job.",
      "batch: grid.submit of the batch -> every job finished, pilots report ack, starting, running, ended;",
      `  BullMQ addBulk -> every job completed, worker concurrency ${PILOTS}, removeOnComplete/removeOnFail.`,
      "CPU ms/job: CPU time of this process (pilots and BullMQ clients included) and of redis-server over the run;",
      "  redis commands/job: commands redis-server ran, those run by Lua scripts included.",
      "committed transitions/job: state changes of every actor (job, task, dataset, site) per job, each committed",
      "  with its history entry, effects and timers.",
      "ratio: BullMQ / panda-actors for times and CPU, panda-actors / BullMQ for jobs/s: above 1x we are ahead.",
      ...notes,
      ...(failures.length > 0 ? [`failures: ${failures.length} (first: ${failures[0]})`] : []),
    ].join("\n"),
  );
}

await main();
process.exit(0);
