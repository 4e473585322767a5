/**
 * `npm run bench:dispatch`: late binding end to end on Redis (AOF on), one
 * server node in this process (dist/, as users run it; src/ through tsx with
 * PANDA_BENCH_SOURCE=1) and protocol-level pilots in a process of their own
 * (so the node's CPU is measured alone), against BullMQ on the same Redis in
 * the same run.
 *
 *  (a) latency at a paced rate: panda-actors from the commit of a job's
 *      transition to `activated` (its `queue.add` effect starts in the same
 *      tick) to the `job.push` decoded by a pilot; BullMQ from `queue.add()`
 *      to the worker's processor starting. Pilots answer a push with
 *      `job.ended finished` and `pilot.ready` (BullMQ's processor returns).
 *  (b) throughput: a batch submitted at once, submit -> every job finished;
 *      pilots report the whole lifecycle (ack, starting, running, ended).
 *      BullMQ: addBulk -> every job completed, worker concurrency = pilots.
 *  (c) step-up search, both systems: paced runs from PANDA_BENCH_STEP_FROM
 *      jobs/s, the rate multiplied by PANDA_BENCH_STEP_FACTOR each step,
 *      until p99 of (a)'s latency reaches 10 ms, the system does not keep up
 *      (received < 99% of offered, or it fell MAX_BACKLOG behind) or the
 *      rate passes PANDA_BENCH_STEP_MAX; prints the highest step that kept
 *      up with p99 under 10 ms, and every step.
 *  (d) overload, panda-actors: 5x the batch's jobs/s offered as paced task
 *      submissions for a few seconds, then nothing; how many jobs reach
 *      pilots while the node is overloaded, how many submissions fail, and
 *      whether every job still ends exactly once.
 *
 * A paced run that falls more than PANDA_BENCH_MAX_BACKLOG jobs behind stops
 * offering work (and says so), so that its backlog drains in bounded time and
 * does not leak into the next run. Every paced run (steps included) starts on
 * jobs and a queue of its own, after the previous run has drained.
 *
 * PANDA_BENCH_SECONDS (5) per paced run after a 1 s warm-up,
 * PANDA_BENCH_RATES (1000,5000; empty for none), PANDA_BENCH_PILOTS (200),
 * PANDA_BENCH_JOBS (5000; 0 skips the batch) and PANDA_BENCH_TASK_JOBS (100,
 * jobs per task) for the batch, PANDA_BENCH_MAX_BACKLOG (2000),
 * PANDA_BENCH_SKIP_BASELINE=1 to leave BullMQ out; PANDA_BENCH_APPENDFSYNC=always fsyncs
 * the AOF before every reply (default everysec).
 * Step-up search: PANDA_BENCH_STEP=0 skips it, PANDA_BENCH_STEP_FROM (250
 * jobs/s), PANDA_BENCH_STEP_FACTOR (2), PANDA_BENCH_STEP_SECONDS (3 per step
 * after the warm-up), PANDA_BENCH_STEP_MAX (64000 jobs/s).
 * Overload: PANDA_BENCH_OVERLOAD=0 skips it, PANDA_BENCH_OVERLOAD_FACTOR (5,
 * times the batch's jobs/s), PANDA_BENCH_OVERLOAD_BASE (300 jobs/s, used when
 * the batch is skipped), PANDA_BENCH_OVERLOAD_SECONDS (10 of offering; then up
 * to 120 s for every job to end), PANDA_BENCH_OVERLOAD_TASK_JOBS (jobs per
 * submitted task, the batch's PANDA_BENCH_TASK_JOBS by default),
 * PANDA_BENCH_GATE_TRACE=1 (print the admission gate's rate once a second).
 * Replication: PANDA_BENCH_WAIT_REPLICAS=N gives the private Redis N replicas
 * and the node(s) --redis-wait-replicas N (WAIT after every write), to
 * measure what that durability costs.
 *
 * Several nodes: `-- --nodes 1,2,3` (or PANDA_BENCH_NODES=1,2,3) runs, instead
 * of the above, the same grid on 1, 2, 3 server node processes on the one
 * Redis in turn and prints, per node count, the batch's jobs/s and a paced
 * run's p99 (PANDA_BENCH_NODES_RATE jobs/s, default 1000); see
 * support/node-scaling.ts.
 */

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { IntakeGateStats } from "../src/runtime/intake-gate.js";
import type { ServerNode } from "../src/server/server.js";
import { heapFlagsLine } from "./support/heap-flags.js";
import { intakeCost } from "./support/intake-cost.js";
import { formatNodeScaling, runNodeScaling } from "./support/node-scaling.js";
import type { SwarmMode } from "./support/pilot-swarm.js";
import { PilotSwarm, type SwarmProgress } from "./support/pilot-swarm-client.js";
import { type BenchRedis, benchWaitReplicas, startBenchRedis } from "./support/private-redis.js";
import { benchRunsSource, serverModule } from "./support/server-module.js";
import { formatTable, Samples } from "./support/stats.js";

const DURATION_MS = Number(process.env.PANDA_BENCH_SECONDS ?? 5) * 1000;
const RATES = (process.env.PANDA_BENCH_RATES ?? "1000,5000").split(",").filter(Boolean).map(Number);
const PILOTS = Number(process.env.PANDA_BENCH_PILOTS ?? 200);
const BATCH_JOBS = Number(process.env.PANDA_BENCH_JOBS ?? 5000);
const TASK_JOBS = Number(process.env.PANDA_BENCH_TASK_JOBS ?? 100);
const MAX_BACKLOG = Number(process.env.PANDA_BENCH_MAX_BACKLOG ?? 2000);
const SKIP_BASELINE = Boolean(process.env.PANDA_BENCH_SKIP_BASELINE);
const STEP = process.env.PANDA_BENCH_STEP !== "0";
const STEP_FROM = Number(process.env.PANDA_BENCH_STEP_FROM ?? 250);
const STEP_FACTOR = Number(process.env.PANDA_BENCH_STEP_FACTOR ?? 2);
const STEP_MS = Number(process.env.PANDA_BENCH_STEP_SECONDS ?? 3) * 1000;
const STEP_MAX = Number(process.env.PANDA_BENCH_STEP_MAX ?? 64_000);
/** A step passes while its p99 stays below this... */
const STEP_P99_MS = 10;
/** ...and it receives at least this share of the offered rate. */
const STEP_KEEP_UP = 0.99;
const OVERLOAD = process.env.PANDA_BENCH_OVERLOAD !== "0";
const OVERLOAD_FACTOR = Number(process.env.PANDA_BENCH_OVERLOAD_FACTOR ?? 5);
const OVERLOAD_BASE = Number(process.env.PANDA_BENCH_OVERLOAD_BASE ?? 300);
const OVERLOAD_MS = Number(process.env.PANDA_BENCH_OVERLOAD_SECONDS ?? 10) * 1000;
/** Jobs per task the overload submits: the batch's task size, so the two compare like with like. */
const OVERLOAD_TASK_JOBS = Number(process.env.PANDA_BENCH_OVERLOAD_TASK_JOBS ?? TASK_JOBS);
/** How long the overload run waits, once it stops offering work, for every job submitted to end. */
const OVERLOAD_DRAIN_MS = 120_000;
const GATE_TRACE = process.env.PANDA_BENCH_GATE_TRACE === "1";
const WARMUP_MS = 1000;
/** `--nodes 1,2,3` or PANDA_BENCH_NODES: the node counts of the scaling run; null runs the usual bench. */
const NODE_COUNTS = nodeCounts();
const NODES_RATE = Number(process.env.PANDA_BENCH_NODES_RATE ?? 1000);
const WAIT_REPLICAS = benchWaitReplicas();
/** How long a paced run may take to work off its backlog once it stops offering work. */
const DRAIN_MS = 30_000;
/** How long the batch may take to finish. */
const BATCH_LIMIT_MS = 90_000;
/** The whole benchmark gives up (and cleans up) after this, whatever happens. */
const DEADLINE_MS = 20 * 60_000;
const SITE = "BENCH";
const USER = "bench";

function nodeCounts(): number[] | null {
  const flag = process.argv.indexOf("--nodes");
  const text = flag >= 0 ? process.argv[flag + 1] : process.env.PANDA_BENCH_NODES;
  if (text === undefined || text === "") return null;
  const counts = text.split(",").map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 16))
    throw new Error(`--nodes / PANDA_BENCH_NODES: node counts from 1 to 16, comma-separated, not "${text}"`);
  return counts;
}

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
  /** CPU milliseconds of the pilots' process, when they run in one of their own. */
  pilotsCpuMs: (() => Promise<number>) | null = null;

  constructor(private readonly redis: Redis) {}

  async read(): Promise<{
    node: number;
    redis: number;
    pilots: number;
    commands: number;
    byCommand: Map<string, number>;
  }> {
    const info = await this.redis.info("all");
    const byCommand = new Map<string, number>();
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand.set(m[1]!, Number(m[2]));
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
    const pilots = this.pilotsCpuMs ? (await this.pilotsCpuMs()) / 1000 : 0;
    const usage = process.cpuUsage();
    return {
      node: (usage.user + usage.system) / 1e6,
      pilots,
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
      pilotsMsPerJob: ((after.pilots - before.pilots) * 1000) / jobs,
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
  /** The pilots' own process (panda-actors only: BullMQ's workers are in this process, in nodeMsPerJob). */
  pilotsMsPerJob: number;
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
    /** Waits until every received job has been told to this process (pilots in another process). */
    settle?: () => Promise<void>;
  },
  ms = DURATION_MS,
): Promise<PacedResult> {
  const started = performance.now();
  const windowStart = started + WARMUP_MS;
  const elu = performance.eventLoopUtilization();
  const { created, stoppedAt } = await pace(
    rate,
    WARMUP_MS + ms,
    create,
    (created) => created - probes.receivedAt.size > MAX_BACKLOG,
  );
  const busy = performance.eventLoopUtilization(elu).utilization;
  await until(() => probes.finished() >= created, DRAIN_MS);
  await probes.settle?.();
  // A run stopped during its warm-up is measured whole: there is nothing else to measure.
  const windowEnd = stoppedAt ?? windowStart + ms;
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

type PilotMode = SwarmMode;

const JOB_OUTCOMES = new Set(["finished", "failed", "cancelled", "closed"]);

/** What the pilots and the runtime tell about the jobs of the current run. */
class Tracker {
  readonly activatedAt = new Map<string, number>();
  readonly pushedAt = new Map<string, number>();
  /** When a pilot first decoded a push of the job. */
  readonly firstPushAt = new Map<string, number>();
  /** `job.ended` reports pilots sent, per job id. */
  readonly endedReports = new Map<string, number>();
  /** Committed transitions into a final state (finished, failed, cancelled, closed), per job id. */
  readonly finals = new Map<string, number>();
  /** Final transitions by state. */
  readonly finalStates = new Map<string, number>();
  finished = 0;
  /** Committed transitions of every actor (job, task, dataset, site, ...) since the last reset. */
  transitions = 0;
  errors = 0;
  lastError = "";
  prefix = "-";
  mode: PilotMode = "ended-only";

  /** What the pilots' process saw: pushes decoded and job.ended reports sent. */
  readonly onSwarm = (progress: SwarmProgress): void => {
    for (const [jobId, at] of progress.pushes) {
      this.pushedAt.set(jobId, at);
      if (!this.firstPushAt.has(jobId)) this.firstPushAt.set(jobId, at);
    }
    for (const jobId of progress.ended) this.endedReports.set(jobId, (this.endedReports.get(jobId) ?? 0) + 1);
    if (progress.errors > 0) {
      this.errors += progress.errors;
      this.lastError = progress.lastError;
    }
  };

  reset(prefix: string, mode: PilotMode): void {
    this.activatedAt.clear();
    this.pushedAt.clear();
    this.firstPushAt.clear();
    this.endedReports.clear();
    this.finals.clear();
    this.finalStates.clear();
    this.finished = 0;
    this.transitions = 0;
    this.prefix = prefix;
    this.mode = mode;
  }
}

interface BenchGrid {
  node: ServerNode;
  pilots: PilotSwarm;
  tracker: Tracker;
  /** Sets what the pilots report and what the tracker counts, for a run of jobs named `prefix...`. */
  startRun(prefix: string, mode: PilotMode): Promise<void>;
  /** Waits until every push and report the pilots made has reached the tracker. */
  settle(): Promise<void>;
}

async function startGrid(redis: BenchRedis, dataDir: string): Promise<BenchGrid> {
  const pilotToken = `pilot-${randomBytes(12).toString("hex")}`;
  const { startServerNode } = await serverModule();
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
    redisWaitReplicas: WAIT_REPLICAS,
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
      if (JOB_OUTCOMES.has(t.entry.to) && t.entry.from !== t.entry.to) {
        tracker.finals.set(jobId, (tracker.finals.get(jobId) ?? 0) + 1);
        tracker.finalStates.set(t.entry.to, (tracker.finalStates.get(t.entry.to) ?? 0) + 1);
      }
    }
  });
  const pilots = await PilotSwarm.start(
    { url: `${node.url}/pilot`, token: pilotToken, pilots: PILOTS, site: SITE },
    tracker.onSwarm,
  );
  await until(() => node.dispatcher.connectedPilots().every((p) => p.ready.length > 0), 10_000);
  return {
    node,
    pilots,
    tracker,
    async startRun(prefix, mode) {
      await pilots.setMode(mode);
      tracker.reset(prefix, mode);
    },
    async settle() {
      await pilots.drain();
    },
  };
}

let taskSeq = 0;

/** What became of task submissions: each answered (accepted or an error) or still waiting. */
class Submissions {
  tasks = 0;
  jobs = 0;
  acceptedJobs = 0;
  failedTasks = 0;
  failedJobs = 0;
  /** Accepted tasks and their job counts: the job ids that must each end once. */
  readonly accepted: { taskId: string; jobs: number }[] = [];
  /** Errors by code (or message). */
  readonly errors = new Map<string, number>();

  get answered(): number {
    return this.accepted.length + this.failedTasks;
  }
}

type RuntimeStats = ReturnType<ServerNode["grid"]["runtime"]["stats"]>;

/** How the run's transitions went to the store: records, shard batches and store calls per job. */
function commitsNote(run: string, before: RuntimeStats, after: RuntimeStats, jobs: number): string {
  const perJob = (n: number) => (n / Math.max(1, jobs)).toFixed(2);
  return (
    `${run} commits per job: ${perJob(after.committedRecords - before.committedRecords)} records ` +
    `(an actor's events of one commit folded into one), in ${perJob(after.commits - before.commits)} ` +
    `shard batches, in ${perJob(after.commitCalls - before.commitCalls)} store calls`
  );
}

/** Submits `jobs` instant jobs as tasks of at most TASK_JOBS jobs, without waiting. */
function submitJobs(
  node: ServerNode,
  prefix: string,
  jobs: number,
  failures: string[],
  tally?: Submissions,
  taskJobs = TASK_JOBS,
): Promise<unknown>[] {
  const submitted: Promise<unknown>[] = [];
  for (let left = jobs; left > 0; left -= taskJobs) {
    const taskId = `${prefix}${(taskSeq++).toString(36)}`;
    const n = Math.min(taskJobs, left);
    if (tally) {
      tally.tasks++;
      tally.jobs += n;
    }
    submitted.push(
      node.grid.submit({ taskId, jobs: n, type: "production", payload: { command: ["true"] } }, USER).then(
        (accepted) => {
          if (!tally) return;
          tally.accepted.push(accepted);
          tally.acceptedJobs += accepted.jobs;
        },
        (err: unknown) => {
          failures.push((err as Error).message);
          if (!tally) return;
          tally.failedTasks++;
          tally.failedJobs += n;
          const code = (err as { code?: unknown }).code;
          const key = typeof code === "string" ? code : (err as Error).message.slice(0, 80);
          tally.errors.set(key, (tally.errors.get(key) ?? 0) + 1);
        },
      ),
    );
  }
  return submitted;
}

/** Waits (bounded) until every pilot of the grid is idle and asking for work again. */
function pilotsIdle(grid: BenchGrid, ms = 10_000): Promise<boolean> {
  return until(() => grid.node.dispatcher.connectedPilots().every((p) => p.ready.length > 0), ms);
}

async function pandaPaced(
  grid: BenchGrid,
  rate: number,
  failures: string[],
  prefix = `lat${rate}-`,
  ms = DURATION_MS,
): Promise<PacedResult> {
  const { node, tracker } = grid;
  await grid.startRun(prefix, "ended-only");
  return pacedRun(
    rate,
    (n) => submitJobs(node, prefix, n, failures),
    {
      startedAt: tracker.activatedAt,
      receivedAt: tracker.pushedAt,
      finished: () => tracker.finished,
      settle: () => grid.settle(),
    },
    ms,
  );
}

async function pandaThroughput(grid: BenchGrid, failures: string[]): Promise<ThroughputResult> {
  const { node, tracker } = grid;
  await grid.startRun("batch-", "lifecycle");
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

async function bullPaced(
  url: string,
  rate: number,
  failures: string[],
  ms = DURATION_MS,
): Promise<PacedResult> {
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
      ms,
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

// ---------------------------------------------------------------- step-up search

interface Step {
  rate: number;
  result: PacedResult;
  /** Why the search stopped at this step; null when the step passed. */
  failed: string | null;
}

/** Why a step ends the search: null while p99 stays under STEP_P99_MS and the system keeps up. */
function stepFailure(rate: number, r: PacedResult): string | null {
  if (r.stoppedAfterSec !== null) {
    return `fell ${MAX_BACKLOG} jobs behind after ${r.stoppedAfterSec.toFixed(1)} s`;
  }
  if (r.receivedPerSec < rate * STEP_KEEP_UP) {
    return `received ${Math.round(r.receivedPerSec)}/s < ${STEP_KEEP_UP * 100}% of offered`;
  }
  if (r.missing > 0) return `${r.missing} jobs not received ${DRAIN_MS / 1000} s after the step`;
  const p99 = r.latency.percentile(99);
  if (!(p99 < STEP_P99_MS)) return `p99 ${p99.toFixed(2)} ms >= ${STEP_P99_MS} ms`;
  return null;
}

/**
 * Paced runs of STEP_MS (after the warm-up) from STEP_FROM jobs/s, the rate
 * times STEP_FACTOR each step, until a step fails or the rate passes STEP_MAX.
 * `run` starts each step on jobs (or a queue) of its own.
 */
async function stepSearch(run: (rate: number) => Promise<PacedResult>): Promise<Step[]> {
  const steps: Step[] = [];
  for (let rate = STEP_FROM; rate <= STEP_MAX; rate = Math.max(rate + 1, Math.round(rate * STEP_FACTOR))) {
    const result = await run(rate);
    const failed = stepFailure(rate, result);
    steps.push({ rate, result, failed });
    if (failed) break;
  }
  return steps;
}

/** The highest step that passed (the steps pass up to the first that fails). */
function bestStep(steps: Step[]): Step | null {
  return steps.filter((s) => s.failed === null).at(-1) ?? null;
}

function stepRows(system: string, steps: Step[]): Row[] {
  return steps.map(({ rate, result, failed }) => [
    system,
    rate,
    result.receivedPerSec,
    result.latency.percentile(50),
    result.latency.percentile(99),
    result.latency.percentile(100),
    percent(result.busy),
    failed ?? "ok",
  ]);
}

function stepSummary(system: string, steps: Step[]): string {
  const best = bestStep(steps);
  const last = steps.at(-1);
  const end = !last
    ? `no step run (PANDA_BENCH_STEP_FROM ${STEP_FROM} > PANDA_BENCH_STEP_MAX ${STEP_MAX})`
    : last.failed
      ? `stopped at ${last.rate.toLocaleString("en-US")}/s: ${last.failed}`
      : `every step passed up to PANDA_BENCH_STEP_MAX ${STEP_MAX.toLocaleString("en-US")}/s`;
  if (!best) return `${system}: no stepped rate kept up with p99 < ${STEP_P99_MS} ms; ${end}`;
  return (
    `${system}: highest stepped rate kept up with p99 < ${STEP_P99_MS} ms: ` +
    `${best.rate.toLocaleString("en-US")}/s (received ${Math.round(best.result.receivedPerSec).toLocaleString("en-US")}/s, ` +
    `p99 ${best.result.latency.percentile(99).toFixed(2)} ms); ${end}`
  );
}

// ---------------------------------------------------------------- overload

interface OverloadResult {
  /** The sustainable rate the offer is a multiple of, and where it came from. */
  sustainable: number;
  sustainableFrom: string;
  offeredPerSec: number;
  offeredJobs: number;
  /** Jobs first pushed to a pilot while work was offered, per second. */
  deliveredPerSec: number;
  submissions: Submissions;
  /** Seconds from the end of the offer until every accepted job had ended; null if it did not in OVERLOAD_DRAIN_MS. */
  drainSec: number | null;
  /** Of the jobs of accepted tasks: how many reached a final state once, never, more than once. */
  finals: { once: number; never: number; many: number };
  /** The same by pilots' job.ended reports. */
  ended: { once: number; never: number; many: number };
  /** Job ids of this run ended or reported that no accepted task has (retries, say). */
  unexpected: number;
  finalStates: Map<string, number>;
  pilotErrors: number;
  /** Admission control at the end of the offer: what it held, its rate, and how often it found the node overloaded. */
  intake: IntakeGateStats | null;
}

function onceNeverMany(expected: string[], counts: Map<string, number>) {
  const tally = { once: 0, never: 0, many: 0 };
  for (const id of expected) {
    const n = counts.get(id) ?? 0;
    if (n === 0) tally.never++;
    else if (n === 1) tally.once++;
    else tally.many++;
  }
  return tally;
}

/**
 * Offers OVERLOAD_FACTOR x `sustainable` jobs/s as paced task submissions
 * (the paced runs' path, no backlog limit) for OVERLOAD_MS, then nothing, and
 * waits up to OVERLOAD_DRAIN_MS for every submission to be answered and every
 * accepted job to end. Pilots report the whole lifecycle, as in the batch the
 * sustainable rate comes from.
 */
async function pandaOverload(
  grid: BenchGrid,
  sustainable: number,
  sustainableFrom: string,
  failures: string[],
): Promise<OverloadResult> {
  const { node, tracker } = grid;
  await pilotsIdle(grid);
  const prefix = "over-";
  await grid.startRun(prefix, "lifecycle");
  const pilotErrors = tracker.errors;
  const submissions = new Submissions();
  const rate = Math.max(1, Math.round(sustainable * OVERLOAD_FACTOR));
  const started = performance.now();
  // Whole tasks of OVERLOAD_TASK_JOBS, as in the batch the sustainable rate comes from: offered
  // is jobs, and a submission of a task is what admission control must accept at any rate.
  let due = 0;
  const trace = GATE_TRACE ? traceGate(node, tracker, started) : null;
  const { created } = await pace(
    rate,
    OVERLOAD_MS,
    (n) => {
      due += n;
      const whole = due - (due % OVERLOAD_TASK_JOBS);
      if (whole > 0) submitJobs(node, prefix, whole, failures, submissions, OVERLOAD_TASK_JOBS);
      due -= whole;
    },
    () => false,
  );
  if (due > 0) submitJobs(node, prefix, due, failures, submissions, OVERLOAD_TASK_JOBS);
  const offerEnd = performance.now();
  if (trace) clearInterval(trace);
  const intake = node.grid.runtime.stats().intake;
  const drained = await until(
    () => submissions.answered === submissions.tasks && tracker.finals.size >= submissions.acceptedJobs,
    OVERLOAD_DRAIN_MS,
  );
  await grid.settle();
  const drainSec = drained ? (performance.now() - offerEnd) / 1000 : null;
  const expected: string[] = [];
  for (const { taskId, jobs } of submissions.accepted) {
    for (let i = 0; i < jobs; i++) expected.push(`${taskId}-${i}.1`);
  }
  const known = new Set(expected);
  const unexpected = new Set(
    [...tracker.finals.keys(), ...tracker.endedReports.keys()].filter((id) => !known.has(id)),
  );
  return {
    sustainable,
    sustainableFrom,
    offeredPerSec: (created / (offerEnd - started)) * 1000,
    offeredJobs: created,
    deliveredPerSec:
      (inWindow(tracker.firstPushAt.values(), started, offerEnd) / (offerEnd - started)) * 1000,
    submissions,
    drainSec,
    finals: onceNeverMany(expected, tracker.finals),
    ended: onceNeverMany(expected, tracker.endedReports),
    unexpected: unexpected.size,
    finalStates: new Map(tracker.finalStates),
    pilotErrors: tracker.errors - pilotErrors,
    intake,
  };
}

/** PANDA_BENCH_GATE_TRACE=1: once a second of the offer, the gate's state and the jobs pushed that second. */
function traceGate(node: ServerNode, tracker: { firstPushAt: Map<string, number> }, started: number) {
  let last = started;
  return setInterval(() => {
    const now = performance.now();
    const intake = node.grid.runtime.stats().intake;
    const pushed = inWindow(tracker.firstPushAt.values(), last, now);
    console.log(
      `  gate at ${((now - started) / 1000).toFixed(1)} s: ${intake?.perSecond}/s admitted, ${intake?.queued} held, ` +
        `${intake?.overloadedTicks} overloaded ticks; ${Math.round((pushed * 1000) / (now - last))} jobs/s pushed`,
    );
    last = now;
  }, 1000);
}

function overloadRows(o: OverloadResult): Row[] {
  const sub = o.submissions;
  const unanswered = sub.tasks - sub.answered;
  const f = (t: { once: number; never: number; many: number }) =>
    `${t.once.toLocaleString("en-US")} / ${t.never} / ${t.many}`;
  return [
    ["overload offered jobs/s", o.offeredPerSec, "-", ""],
    ["overload delivered jobs/s (while offered)", o.deliveredPerSec, "-", ""],
    [
      `overload delivered / sustainable (${Math.round(o.sustainable)}/s)`,
      ratio(o.deliveredPerSec, o.sustainable),
      "-",
      "",
    ],
    [
      "overload tasks accepted / error / unanswered",
      `${sub.accepted.length.toLocaleString("en-US")} / ${sub.failedTasks} / ${unanswered}`,
      "-",
      "",
    ],
    [
      "overload jobs accepted / in errored tasks",
      `${sub.acceptedJobs.toLocaleString("en-US")} / ${sub.failedJobs}`,
      "-",
      "",
    ],
    ["overload jobs final once / 0 / >1 times", f(o.finals), "-", ""],
    ["overload job.ended reports once / 0 / >1", f(o.ended), "-", ""],
    ["overload seconds to end all after offer", o.drainSec === null ? "not in time" : o.drainSec, "-", ""],
  ];
}

function overloadVerdict(o: OverloadResult): string[] {
  const sub = o.submissions;
  const unanswered = sub.tasks - sub.answered;
  const exactlyOnce =
    o.finals.never === 0 && o.finals.many === 0 && o.ended.never === 0 && o.ended.many === 0;
  const failed = sub.failedTasks + unanswered;
  const states = [...o.finalStates].map(([state, n]) => `${state} ${n}`).join(", ") || "none";
  const gate = o.intake
    ? `overload admission control at the end of the offer: ${o.intake.queued.toLocaleString("en-US")} job creations held, ` +
      `${o.intake.perSecond.toLocaleString("en-US")}/s admitted, ${o.intake.released.toLocaleString("en-US")} released so far, ` +
      `${o.intake.overloadedTicks.toLocaleString("en-US")} ticks found the node overloaded`
    : "overload admission control: off";
  return [
    `overload: ${Math.round(o.offeredPerSec).toLocaleString("en-US")}/s offered for ${OVERLOAD_MS / 1000} s ` +
      `(${OVERLOAD_FACTOR}x ${Math.round(o.sustainable)}/s from ${o.sustainableFrom}), ` +
      `${o.offeredJobs.toLocaleString("en-US")} jobs in ${sub.tasks.toLocaleString("en-US")} tasks; ` +
      `${Math.round(o.deliveredPerSec)}/s reached pilots while offered ` +
      `(${ratio(o.deliveredPerSec, o.sustainable)} of sustainable)`,
    `overload submissions: ${failed === 0 ? "none failed" : `${failed} FAILED`} ` +
      `(${sub.failedTasks} answered with an error, ${unanswered} unanswered after the wait)` +
      (sub.errors.size > 0
        ? `; errors: ${[...sub.errors].map(([code, n]) => `${code} x${n}`).join(", ")}`
        : ""),
    `overload exactly once: ${exactlyOnce ? "yes" : "NO"}, every job of an accepted task ` +
      `${exactlyOnce ? "ended exactly once" : "did not end exactly once"} ` +
      `(final state: ${o.finals.never} never, ${o.finals.many} more than once; pilots' job.ended: ` +
      `${o.ended.never} never, ${o.ended.many} more than once); final states ${states}; ` +
      `${o.unexpected} other job ids; ${o.pilotErrors} errors answered to pilots` +
      (o.drainSec === null ? `; NOT all ended within ${OVERLOAD_DRAIN_MS / 1000} s of the offer's end` : ""),
    gate,
  ];
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
    [`${at} pilots CPU ms/job (own process)`, ours.pilotsMsPerJob, "-", ""],
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

/** `--nodes`: the grid on each node count in turn, on one private Redis. */
async function nodesMain(counts: number[]): Promise<void> {
  const redis = await startBenchRedis();
  console.log(
    `dispatch benchmark on ${counts.join(", ")} server node processes: ${PILOTS} pilots on one site spread over ` +
      `the nodes, a batch of ${BATCH_JOBS.toLocaleString("en-US")} jobs in tasks of ${TASK_JOBS} submitted round-robin, ` +
      `then ${NODES_RATE.toLocaleString("en-US")} jobs/s for ${DURATION_MS / 1000} s, against ${redis.description}\n`,
  );
  try {
    const results = await runNodeScaling(counts, {
      redisUrl: redis.url,
      serverOptions: { redisWaitReplicas: WAIT_REPLICAS },
      pilots: PILOTS,
      batchJobs: BATCH_JOBS,
      taskJobs: TASK_JOBS,
      rate: NODES_RATE,
      pacedMs: DURATION_MS,
    });
    console.log(formatNodeScaling(results, NODES_RATE));
  } finally {
    await redis.stop();
  }
}

async function main(): Promise<void> {
  if (NODE_COUNTS) return nodesMain(NODE_COUNTS);
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
      `${TASK_JOBS}, against ${redis.description}; ${heapFlagsLine()}\n`,
  );
  const failures: string[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  const meterClient = new Redis(redis.url);
  const cpu = new CpuMeter(meterClient);
  let grid: BenchGrid | null = null;
  let bullSteps: Step[] | null = null;
  let pandaSteps: Step[] | null = null;
  try {
    grid = await startGrid(redis, dataDir);
    const pilots = grid.pilots;
    cpu.pilotsCpuMs = () => pilots.cpuMs();
    const bindMs = new Samples();
    grid.node.dispatcher.onDispatch((_site, ms) => bindMs.add(ms));
    for (const rate of RATES) {
      // BullMQ first: whatever backlog our run leaves cannot slow it down.
      const bull = SKIP_BASELINE ? null : await cpu.perJob(() => bullPaced(redis.url, rate, failures));
      const statsBefore = grid.node.grid.runtime.stats();
      const ours = await cpu.perJob(() => pandaPaced(grid!, rate, failures));
      notes.push(
        commitsNote(
          `${rate.toLocaleString("en-US")}/s`,
          statsBefore,
          grid.node.grid.runtime.stats(),
          ours.jobs,
        ),
      );
      rows.push(...pacedRows(rate, ours, bull));
      rows.push(transitionsRow(`${rate.toLocaleString("en-US")}/s`, grid.tracker.transitions, ours.jobs));
      notes.push(verdict("panda-actors", rate, ours));
      if (bull) notes.push(verdict("BullMQ", rate, bull));
    }
    // The overload's offer is a multiple of what the node sustains: the batch's jobs/s.
    let sustainable = { perSec: OVERLOAD_BASE, from: "PANDA_BENCH_OVERLOAD_BASE" };
    let batchNodeMsPerJob: number | null = null;
    if (BATCH_JOBS > 0) {
      const bull = SKIP_BASELINE ? null : await cpu.perJob(() => bullThroughput(redis.url, failures));
      const statsBefore = grid.node.grid.runtime.stats();
      const ours = await cpu.perJob(() => pandaThroughput(grid!, failures));
      const statsAfter = grid.node.grid.runtime.stats();
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
      rows.push([`${batch} pilots CPU ms/job (own process)`, ours.pilotsMsPerJob, "-", ""]);
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
      notes.push(commitsNote("batch", statsBefore, statsAfter, ours.jobs));
      if (ours.perSecond > 0) sustainable = { perSec: ours.perSecond, from: "the batch" };
      batchNodeMsPerJob = ours.nodeMsPerJob;
    }
    notes.push(
      `dispatcher bind (queue read -> dispatch commit -> push sent): p50 ${bindMs.percentile(50).toFixed(2)} ms, ` +
        `p99 ${bindMs.percentile(99).toFixed(2)} ms over ${bindMs.count.toLocaleString("en-US")} pushes`,
    );
    if (STEP) {
      // BullMQ first, as in the paced runs; each step is a paced run on a queue or jobs of its own.
      if (!SKIP_BASELINE)
        bullSteps = await stepSearch((rate) => bullPaced(redis.url, rate, failures, STEP_MS));
      const g = grid;
      pandaSteps = await stepSearch(async (rate) => {
        await pilotsIdle(g);
        return pandaPaced(g, rate, failures, `step${rate}-`, STEP_MS);
      });
    }
    if (OVERLOAD) {
      const overload = await pandaOverload(grid, sustainable.perSec, sustainable.from, failures);
      rows.push(...overloadRows(overload));
      notes.push(...overloadVerdict(overload));
      const intake = await intakeCost(redis.url, 200, OVERLOAD_TASK_JOBS);
      rows.push(["intake node CPU us/job (every job held)", intake.cpuUsPerJob, "-", ""]);
      rows.push(["intake heap bytes/job held", Math.round(intake.heapBytesPerJob), "-", ""]);
      notes.push(
        `intake: ${intake.jobs.toLocaleString("en-US")} jobs in tasks of ${OVERLOAD_TASK_JOBS} accepted by a second grid ` +
          `whose admission control held them all, ${intake.cpuUsPerJob.toFixed(1)} us of node CPU each` +
          (batchNodeMsPerJob
            ? `: at ${OVERLOAD_FACTOR}x the sustainable rate, intake takes ` +
              `${((100 * OVERLOAD_FACTOR * intake.cpuUsPerJob) / (batchNodeMsPerJob * 1000)).toFixed(1)}% ` +
              `of the node CPU a sustained job costs (${batchNodeMsPerJob.toFixed(2)} ms in the batch)`
            : ""),
      );
    }
    notes.push(
      `errors answered to pilots: ${grid.tracker.errors}` +
        (grid.tracker.errors > 0 ? ` (last: ${grid.tracker.lastError})` : ""),
    );
  } finally {
    if (grid) {
      await grid.pilots.stop();
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
      "  called to its processor starting. Epoch clock of each process (performance.timeOrigin + now()). Pilots answer a push with",
      "  job.ended finished and pilot.ready. Jobs are created in ~1 ms ticks: grid.submit of tasks of the jobs",
      "  due (at most " + TASK_JOBS + " each), queue.add per job.",
      "batch: grid.submit of the batch -> every job finished, pilots report ack, starting, running, ended;",
      `  BullMQ addBulk -> every job completed, worker concurrency ${PILOTS}, removeOnComplete/removeOnFail.`,
      "CPU ms/job: node = this process: the server node (" +
        (benchRunsSource() ? "src/ through tsx" : "dist/, as users run it") +
        ") and the submitter; BullMQ's",
      "  node = its producer and workers, in this process; pilots = panda-actors' pilots, in a process of their own;",
      "  redis = redis-server; all over the run.",
      "  redis commands/job: commands redis-server ran, those run by Lua scripts included.",
      "committed transitions/job: state changes of every actor (job, task, dataset, site) per job, each committed",
      "  with its history entry, effects and timers.",
      "ratio: BullMQ / panda-actors for times and CPU, panda-actors / BullMQ for jobs/s: above 1x we are ahead.",
      "overload: OVERLOAD_FACTOR x the batch's jobs/s offered as paced grid.submit of whole tasks (OVERLOAD_TASK_JOBS each), no backlog limit,",
      "  pilots reporting the whole lifecycle as in the batch; delivered = jobs first pushed to a pilot while work",
      "  was offered; a submission answered with an error or not answered is a failure; each job of an accepted",
      "  task must reach a final state once and be reported job.ended by a pilot once.",
      ...notes,
      ...(failures.length > 0 ? [`failures: ${failures.length} (first: ${failures[0]})`] : []),
    ].join("\n"),
  );
  if (pandaSteps) {
    console.log(
      `\nstep-up search: from ${STEP_FROM}/s, x${STEP_FACTOR} a step, ${STEP_MS / 1000} s per step after a ` +
        `${WARMUP_MS / 1000} s warm-up, until p99 >= ${STEP_P99_MS} ms, received < ${STEP_KEEP_UP * 100}% ` +
        `of offered, or past ${STEP_MAX.toLocaleString("en-US")}/s\n`,
    );
    console.log(
      formatTable(
        ["system", "offered/s", "received/s", "p50 ms", "p99 ms", "max ms", "loop busy", "step"],
        [...(bullSteps ? stepRows("BullMQ", bullSteps) : []), ...stepRows("panda-actors", pandaSteps)],
      ),
    );
    console.log("");
    if (bullSteps) console.log(stepSummary("BullMQ", bullSteps));
    console.log(stepSummary("panda-actors", pandaSteps));
    const ours = bestStep(pandaSteps);
    const theirs = bullSteps && bestStep(bullSteps);
    if (bullSteps) {
      const at = (s: Step | null) => (s ? `${s.rate.toLocaleString("en-US")}/s` : "none");
      console.log(
        `highest rate kept up with p99 < ${STEP_P99_MS} ms, panda-actors / BullMQ: ${at(ours)} / ${at(theirs)}` +
          (ours && theirs ? ` = ${ratio(ours.rate, theirs.rate)}` : ""),
      );
    }
  }
}

await main();
process.exit(0);
