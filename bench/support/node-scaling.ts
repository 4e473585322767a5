/**
 * `bench:dispatch --nodes 1,2,3`: the same grid on 1, 2, 3 ... server nodes
 * on one Redis, in one run. Each node is a process of its own (node-child.ts:
 * one event loop per node, as on N machines; in one process the nodes would
 * share one loop and measure nothing of scaling), each with its own pilot
 * swarm (its share of the pilots, connected to it). Per node count: a batch
 * (submitted round-robin over the nodes, pilots reporting the whole
 * lifecycle) -> jobs/s, then a paced run -> p99 from a job's `activated`
 * commit (its node's epoch clock) to the push decoded by a pilot.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVER_NODE_FLAGS } from "../../src/cli/server-heap.js";
import type { NodeChildCommand, NodeChildReport } from "./node-child.js";
import { PilotSwarm } from "./pilot-swarm-client.js";
import { formatTable, Samples } from "./stats.js";

export interface NodeScalingOptions {
  redisUrl: string;
  /** Extra server options every node gets (e.g. the replica wait). */
  serverOptions: Record<string, unknown>;
  pilots: number;
  batchJobs: number;
  taskJobs: number;
  /** The paced run's offered jobs/s, its length after a 1 s warm-up. */
  rate: number;
  pacedMs: number;
}

export interface NodeScalingResult {
  nodes: number;
  batchPerSec: number;
  batchMissing: number;
  receivedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the nodes' processes over the batch, per job. */
  nodesCpuMsPerJob: number;
}

const SITE = "BENCH";
const USER = "bench";
const WARMUP_MS = 1000;
const LIMIT_MS = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(done: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** One node process and what it told: activations (on this process's performance.now() line) and counts. */
class NodeProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<string>;
  private readonly waiting = new Map<string, ((report: NodeChildReport) => void)[]>();

  constructor(
    options: Record<string, unknown>,
    private readonly onJobs: (report: Extract<NodeChildReport, { type: "jobs" }>) => void,
  ) {
    this.child = fork(fileURLToPath(new URL("./node-child.ts", import.meta.url)), [], {
      // PANDA_BENCH_NODE_CPU_PROF=DIR: a CPU profile of each node process in DIR (NODE_OPTIONS may not carry --cpu-prof).
      execArgv: [
        ...SERVER_NODE_FLAGS,
        "--import",
        "tsx",
        ...(process.env.PANDA_BENCH_NODE_CPU_PROF
          ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PANDA_BENCH_NODE_CPU_PROF}`]
          : []),
      ],
      env: { ...process.env, PANDA_BENCH_NODE_OPTIONS: JSON.stringify(options) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once("exit", (code) =>
        reject(new Error(`bench node exited with ${code} before it listened`)),
      );
      this.child.on("message", (report: NodeChildReport) => {
        if (report.type === "ready") resolve(report.url);
        else if (report.type === "jobs") this.onJobs(report);
        else this.waiting.get(report.type)?.shift()?.(report);
      });
    });
  }

  ask<T extends NodeChildReport["type"]>(command: NodeChildCommand, answer: T) {
    return new Promise<Extract<NodeChildReport, { type: T }>>((resolve) => {
      this.waiting.set(answer, [
        ...(this.waiting.get(answer) ?? []),
        resolve as (r: NodeChildReport) => void,
      ]);
      this.child.send(command);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.send({ cmd: "close" } satisfies NodeChildCommand);
    await exited;
  }
}

/** Runs the grid on `nodes` node processes; everything it started is stopped before it returns. */
async function runOn(nodes: number, o: NodeScalingOptions): Promise<NodeScalingResult> {
  const pilotToken = `pilot-${randomBytes(12).toString("hex")}`;
  const dataDir = mkdtempSync(join(tmpdir(), "panda-bench-nodes-"));
  const options = {
    port: 0,
    dataDir,
    redisUrl: o.redisUrl,
    redisPrefix: `bench:nodes:${nodes}:${Date.now()}`,
    sites: [
      {
        name: SITE,
        resources: {
          slots: o.pilots,
          memoryPerSlotMb: 4000,
          diskMb: 1_000_000,
          walltimeSec: { min: 0, max: 86_400 },
        },
      },
    ],
    tokens: [{ token: pilotToken, kind: "pilot", site: SITE }],
    maxActiveJobsPerUser: 1_000_000,
    grid: { brokerage: { queueCapMin: 10_000_000 } },
    gateway: { ratePerSec: 1_000_000, burst: 1_000_000 },
    ...o.serverOptions,
  };
  const activatedAt = new Map<string, number>();
  const pushedAt = new Map<string, number>();
  let finished = 0;
  let prefix = "-";
  const onJobs = (report: Extract<NodeChildReport, { type: "jobs" }>) => {
    for (const [jobId, epochMs] of report.activated)
      if (jobId.startsWith(prefix)) activatedAt.set(jobId, epochMs - performance.timeOrigin);
    finished += report.finished;
  };
  const children: NodeProcess[] = [];
  const swarms: PilotSwarm[] = [];
  try {
    for (let i = 0; i < nodes; i++) children.push(new NodeProcess(options, onJobs));
    const urls = await Promise.all(children.map((c) => c.ready));
    const shardsShared = await until(async () => {
      const owned = await Promise.all(children.map((c) => c.ask({ cmd: "shards" }, "shards")));
      return owned.every((s) => s.owned > 0);
    }, 60_000);
    if (!shardsShared) throw new Error(`${nodes} nodes did not share the shards within 60 s`);
    for (let i = 0; i < nodes; i++) {
      const share = Math.floor(o.pilots / nodes) + (i < o.pilots % nodes ? 1 : 0);
      const swarm = await PilotSwarm.start(
        { url: `${urls[i]}/pilot`, token: pilotToken, pilots: share, site: SITE },
        (progress) => {
          for (const [jobId, at] of progress.pushes) if (!pushedAt.has(jobId)) pushedAt.set(jobId, at);
        },
      );
      swarms.push(swarm);
    }
    let seq = 0;
    const submit = (runPrefix: string, jobs: number) => {
      for (let left = jobs; left > 0; left -= o.taskJobs) {
        const node = children[seq % nodes]!;
        node.child.send({
          cmd: "submit",
          taskId: `${runPrefix}${(seq++).toString(36)}`,
          jobs: Math.min(o.taskJobs, left),
          user: USER,
        } satisfies NodeChildCommand);
      }
    };
    const cpuMs = async () =>
      (await Promise.all(children.map((c) => c.ask({ cmd: "cpu" }, "cpu")))).reduce((a, r) => a + r.ms, 0);

    // The batch.
    for (const swarm of swarms) await swarm.setMode("lifecycle");
    prefix = "batch-";
    finished = 0;
    const cpuBefore = await cpuMs();
    const started = performance.now();
    submit("batch-", o.batchJobs);
    await until(() => finished >= o.batchJobs, LIMIT_MS);
    const batchSeconds = (performance.now() - started) / 1000;
    const batchFinished = finished;
    const nodesCpuMsPerJob = ((await cpuMs()) - cpuBefore) / Math.max(1, batchFinished);

    // The paced run.
    for (const swarm of swarms) await swarm.setMode("ended-only");
    prefix = "paced-";
    activatedAt.clear();
    pushedAt.clear();
    finished = 0;
    const pacedStart = performance.now();
    const windowStart = pacedStart + WARMUP_MS;
    let created = 0;
    for (;;) {
      const now = performance.now();
      if (now - pacedStart >= WARMUP_MS + o.pacedMs) break;
      const due = Math.floor(((now - pacedStart) / 1000) * o.rate) - created;
      if (due > 0) {
        submit("paced-", due);
        created += due;
      }
      await sleep(1);
    }
    const windowEnd = windowStart + o.pacedMs;
    await until(() => finished >= created, LIMIT_MS);
    for (const swarm of swarms) await swarm.drain();
    const latency = new Samples();
    let received = 0;
    for (const [jobId, at] of activatedAt) {
      const pushed = pushedAt.get(jobId);
      if (at >= windowStart && at < windowEnd && pushed !== undefined) latency.add(pushed - at);
    }
    for (const at of pushedAt.values()) if (at >= windowStart && at < windowEnd) received++;
    return {
      nodes,
      batchPerSec: batchFinished / batchSeconds,
      batchMissing: o.batchJobs - batchFinished,
      receivedPerSec: (received / o.pacedMs) * 1000,
      p50Ms: latency.percentile(50),
      p99Ms: latency.percentile(99),
      nodesCpuMsPerJob,
    };
  } finally {
    for (const swarm of swarms) await swarm.stop();
    for (const child of children) await child.close().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The grid on each node count in turn, on the same Redis. */
export async function runNodeScaling(counts: number[], o: NodeScalingOptions): Promise<NodeScalingResult[]> {
  const results: NodeScalingResult[] = [];
  for (const nodes of counts) results.push(await runOn(nodes, o));
  return results;
}

/** The results as the bench prints them: a row per node count, then what each column means. */
export function formatNodeScaling(results: NodeScalingResult[], rate: number): string {
  const one = results.find((r) => r.nodes === 1);
  const table = formatTable(
    [
      "nodes",
      "batch jobs/s",
      "per node",
      "vs 1 node",
      "nodes CPU ms/job",
      `${rate}/s received`,
      "p50 ms",
      "p99 ms",
    ],
    results.map((r) => [
      String(r.nodes),
      r.batchPerSec,
      r.batchPerSec / r.nodes,
      one ? `${(r.batchPerSec / one.batchPerSec).toFixed(2)}x` : "-",
      r.nodesCpuMsPerJob,
      r.receivedPerSec,
      r.p50Ms,
      r.p99Ms,
    ]),
  );
  const missing = results.filter((r) => r.batchMissing > 0);
  return [
    table,
    ...(missing.length > 0
      ? [
          `\nmissing after the batch's limit: ${missing.map((r) => `${r.nodes} nodes: ${r.batchMissing}`).join(", ")}`,
        ]
      : []),
    "",
    "nodes: each a process of its own (node-child.ts) on the same Redis; pilots: a swarm process per node, its share of the pilots.",
    "batch: every job submitted -> every job finished, pilots reporting the whole lifecycle.",
    "p50/p99: a job's activated commit (its node's epoch clock) -> job.push decoded by a pilot (the swarm's epoch clock).",
    "nodes CPU ms/job: all node processes together over the batch. On this machine the nodes, the swarms and",
    "  redis-server share its cores: past the core count, more nodes add no CPU, only contention.",
  ].join("\n");
}
