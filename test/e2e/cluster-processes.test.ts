/**
 * Issue 12's acceptance: a grid of three `panda server` processes on a real
 * 3-master Redis Cluster with a replica per master, real pilot processes
 * spread over the nodes. A big task across nodes and a kill through a third
 * node; a node SIGKILLed, a node drained and a Redis master killed mid-run,
 * each job checked to have ended exactly once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../cli/panda-process.js";
import { until as untilSoon } from "../pilot/pilot-process.js";
import {
  ClusterGrid,
  describeHistory,
  finalTransitions,
  type JobAnswer,
  jobShard,
} from "../support/cluster-grid.js";
import { useRedisCluster } from "../support/redis-cluster.js";
import { redisBinariesAvailable, reportUnavailable } from "../support/redis-process.js";

const LEASE_MS = 3000;
const canRunCluster = redisBinariesAvailable();
if (!canRunCluster) reportUnavailable("Redis Cluster (no redis-server/redis-cli binary)");

interface EndedOnce {
  /** Every attempt of every job, by job id. */
  byId: Map<string, JobAnswer>;
  finished: number;
  /** Jobs (by index) that needed more than one attempt. */
  retried: number;
}

/** Fetches every attempt's history and checks that each ended exactly once and each job finished exactly once. */
async function checkEndedOnce(grid: ClusterGrid, taskId: string, jobCount: number): Promise<EndedOnce> {
  const node = grid.nodes.find((n) => n.running)!;
  const rows = await grid.jobs(node, taskId);
  const byId = new Map<string, JobAnswer>();
  for (let i = 0; i < rows.length; i += 25) {
    const answers = await Promise.all(rows.slice(i, i + 25).map((row) => grid.job(node, row.jobId)));
    for (const answer of answers) byId.set(answer.job.jobId, answer);
  }
  const attemptsByIndex = new Map<number, JobAnswer[]>();
  for (const [jobId, answer] of byId) {
    expect(
      finalTransitions(answer.history),
      `${jobId}'s final transitions in ${describeHistory(answer.history)}`,
    ).toHaveLength(1);
    const index = Number(/-(\d+)\.\d+$/.exec(jobId)![1]);
    attemptsByIndex.set(index, [...(attemptsByIndex.get(index) ?? []), answer]);
  }
  expect(attemptsByIndex.size).toBe(jobCount);
  let retried = 0;
  for (const [index, attempts] of attemptsByIndex) {
    const finished = attempts.filter((a) => a.job.state === "finished");
    expect(finished, `job ${index}: finished attempts`).toHaveLength(1);
    if (attempts.length > 1) retried++;
  }
  return { byId, finished: attemptsByIndex.size, retried };
}

/** The first task id `t-kill-N` of whose `jobs` jobs some node owns more than two (`owners`: node by shard). */
function taskWithCrowdedOwner(owners: readonly number[], jobs: number): string {
  for (let n = 0; ; n++) {
    const taskId = `t-kill-${n}`;
    const perNode = new Map<number, number>();
    for (let i = 0; i < jobs; i++) {
      const owner = owners[jobShard(`${taskId}-${i}.1`)]!;
      perNode.set(owner, (perNode.get(owner) ?? 0) + 1);
    }
    if (Math.max(...perNode.values()) > 2) return taskId;
  }
}

function dispatchOf(answer: JobAnswer) {
  return answer.history.find((h) => h.event.type === "dispatch");
}

describe.skipIf(!canRunCluster)("three server processes on a Redis Cluster with replicas", () => {
  // A short node timeout: a dead master's replica takes over in about two seconds.
  const held = useRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  let grid: ClusterGrid | null = null;
  afterEach(async (context) => {
    // Before the grid's files go: what the nodes and pilots said, for a failed test.
    if (grid && context.task.result?.state === "fail") process.stderr.write(`${grid.logs()}\n`);
    await grid?.stop();
    grid = null;
  });
  const start = async (extra: { waitReplicas?: number } = {}) => {
    grid = await ClusterGrid.start(held.cluster.seeds, held.admin, {
      nodes: 3,
      pilotsPerNode: 2,
      leaseMs: LEASE_MS,
      ...extra,
    });
    return grid;
  };

  it("runs a 500-job task with jobs of one node's shards on another node's pilots, and a kill through the third node ends a payload within a second", async () => {
    const g = await start();
    const [a, b, c] = g.nodes as [(typeof g.nodes)[0], (typeof g.nodes)[0], (typeof g.nodes)[0]];
    const owners = await g.shardOwners();
    expect(owners.every((o) => o >= 0)).toBe(true);
    const pilotNode = await g.pilotNodes();
    await g.submit(a, "t-500", 500, ["true"]);
    await g.untilTaskDone(b, "t-500", 300_000);
    // No node joined or left: the shards' owners while the jobs ran are the owners now.
    expect(await g.shardOwners()).toEqual(owners);
    const { byId, finished, retried } = await checkEndedOnce(g, "t-500", 500);
    expect(finished).toBe(500);
    let acrossNodes = 0;
    for (const [jobId, answer] of byId) {
      const pilotId = dispatchOf(answer)?.event.pilotId;
      const ranOn = pilotNode.get(pilotId ?? "");
      expect(ranOn, `${jobId}'s pilot ${pilotId}`).toBeDefined();
      if (ranOn !== owners[jobShard(jobId)]) acrossNodes++;
    }
    console.log(
      `500-job task on 3 nodes: ${finished} finished, ${retried} retried, ${acrossNodes} ran on a pilot of another node than their shard's`,
    );
    expect(acrossNodes).toBeGreaterThan(0);

    // One long job per pilot; a job whose shard is on one node and pilot on another is killed through the third.
    // A task of which one node owns three jobs or more: with two single-job pilots a node, six running
    // put one of them on another node's pilot. Two jobs a node could all run at home, and once did.
    const killTask = taskWithCrowdedOwner(owners, 6);
    await g.submit(a, killTask, 6, ["sleep", "600"]);
    const running = await until(
      async () => {
        const jobs = await g.jobs(a, killTask);
        return jobs.filter((j) => j.state === "running").length === 6 ? jobs : undefined;
      },
      60_000,
      "six sleeping jobs running",
    );
    let target: { jobId: string; via: number } | undefined;
    for (const row of running) {
      const owner = owners[jobShard(row.jobId)]!;
      const ranOn = pilotNode.get(dispatchOf(await g.job(a, row.jobId))?.event.pilotId ?? "")!;
      if (owner !== ranOn) target = { jobId: row.jobId, via: 3 - owner - ranOn };
      if (target) break;
    }
    expect(target, "a running job whose pilot is on another node than its shard").toBeDefined();
    const { jobId, via } = target!;
    const killedAtMs = Date.now();
    const killed = await g.post(g.nodes[via]!, `/api/v1/jobs/${jobId}/kill`, { reason: "test" });
    expect(killed.status).toBe(200);
    const endedLine = new RegExp(
      `"jobId":"${jobId.replace(/\./g, "\\.")}".*"outcome":"cancelled"|"outcome":"cancelled".*"jobId":"${jobId.replace(/\./g, "\\.")}"`,
    );
    await untilSoon(() => (g.pilots.some((p) => endedLine.test(p.log)) ? true : undefined), 10_000);
    const killMs = Date.now() - killedAtMs;
    console.log(`kill through ${g.nodes[via]!.spec.name} ended the payload in ${killMs} ms`);
    expect(killMs).toBeLessThan(1000);
    void c;
  }, 420_000);

  it("survives a node SIGKILLed with ~300 jobs in flight: its shards are taken over within the lease, its pilots resume elsewhere, every job ends once", async () => {
    const g = await start();
    const [a, victim, c] = g.nodes as [(typeof g.nodes)[0], (typeof g.nodes)[0], (typeof g.nodes)[0]];
    const jobs = 400;
    await g.submit(a, "t-sigkill", jobs, ["sleep", "0.2"]);
    const finishedBefore = await until(
      async () => {
        const finished = (await g.task(c, "t-sigkill").catch(() => null))?.counts.finished ?? 0;
        return finished >= 100 ? finished : undefined;
      },
      180_000,
      "100 jobs finished",
    );
    const pilotNode = await g.pilotNodes();
    const victimPilots = new Set([...pilotNode].filter(([, n]) => n === 1).map(([id]) => id));
    expect(victimPilots.size).toBe(2);
    const killedAtMs = Date.now();
    await victim.kill();
    const takeoverMs = await g.untilShardsShared([a, c], 60_000);
    await until(
      async () =>
        (await g.localPilots(a)).length + (await g.localPilots(c)).length === 6 ? true : undefined,
      60_000,
      "the killed node's pilots on the other nodes",
    );
    const reconnectMs = Date.now() - killedAtMs;
    await g.untilTaskDone(a, "t-sigkill", 300_000);
    const { byId, finished, retried } = await checkEndedOnce(g, "t-sigkill", jobs);
    let resumed = 0;
    for (const answer of byId.values()) {
      const dispatch = dispatchOf(answer);
      const final = finalTransitions(answer.history)[0]!;
      if (
        answer.job.attempt === 1 &&
        answer.job.state === "finished" &&
        victimPilots.has(dispatch?.event.pilotId ?? "") &&
        dispatch!.at < killedAtMs &&
        final.at > killedAtMs
      )
        resumed++;
    }
    console.log(
      `node SIGKILLed with ${jobs - finishedBefore} of ${jobs} jobs in flight: shards taken over in ${takeoverMs} ms (lease ${LEASE_MS} ms), pilots back in ${reconnectMs} ms; ${finished} finished, ${retried} retried, ${resumed} resumed on another node`,
    );
    expect(takeoverMs).toBeLessThan(2 * LEASE_MS);
    expect(resumed).toBeGreaterThan(0);
  }, 420_000);

  it("drains a node (SIGTERM) mid-run: it hands over, no job fails and none is retried", async () => {
    const g = await start();
    const [a, drained, c] = g.nodes as [(typeof g.nodes)[0], (typeof g.nodes)[0], (typeof g.nodes)[0]];
    const jobs = 200;
    await g.submit(a, "t-drain", jobs, ["sleep", "0.2"]);
    await until(
      async () =>
        ((await g.task(c, "t-drain").catch(() => null))?.counts.finished ?? 0) >= 50 ? true : undefined,
      180_000,
      "50 jobs finished",
    );
    await drained.stop();
    expect((await drained.exited).code).toBe(0);
    await g.untilTaskDone(a, "t-drain", 300_000);
    const { byId, finished, retried } = await checkEndedOnce(g, "t-drain", jobs);
    console.log(`node drained mid-run: ${finished} finished, ${retried} retried`);
    expect(retried).toBe(0);
    expect([...byId.values()].filter((j) => j.job.state !== "finished")).toEqual([]);
  }, 420_000);

  it("loses no acknowledged transition when a Redis master is killed and its replica promoted (--redis-wait-replicas 1)", async () => {
    const g = await start({ waitReplicas: 1 });
    const [a, b, c] = g.nodes as [(typeof g.nodes)[0], (typeof g.nodes)[0], (typeof g.nodes)[0]];
    const jobs = 300;
    await g.submit(a, "t-failover", jobs, ["sleep", "0.2"]);
    // What the API acknowledged: every job it listed finished, read from the masters, until the task is done.
    const acknowledged = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      for (let turn = 0; watching; turn++) {
        const node = g.nodes[turn % 3]!;
        const rows = await g
          .get(node, "/api/v1/jobs?task=t-failover&state=finished&limit=10000")
          .catch(() => null);
        for (const row of (rows as { jobs: { jobId: string }[] } | null)?.jobs ?? [])
          acknowledged.add(row.jobId);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await until(() => (acknowledged.size >= 60 ? true : undefined), 180_000, "60 jobs acknowledged finished");
    const [victim] = await held.cluster.masters();
    const beforeKill = acknowledged.size;
    const killedAtMs = Date.now();
    await victim!.server.kill();
    // Its replica is promoted: three masters again.
    await until(
      async () => ((await held.cluster.masters()).length === 3 ? true : undefined),
      60_000,
      "a replica promoted",
    );
    const failoverMs = Date.now() - killedAtMs;
    // A master without its replica takes no waited write: the killed node comes back as the new master's replica.
    await held.cluster.revive(victim!);
    await g.untilTaskDone(b, "t-failover", 300_000);
    watching = false;
    await watcher;
    const { byId, finished, retried } = await checkEndedOnce(g, "t-failover", jobs);
    const lost = [...acknowledged].filter((jobId) => byId.get(jobId)?.job.state !== "finished");
    console.log(
      `Redis master killed with ${beforeKill} jobs acknowledged finished: replica promoted in ${failoverMs} ms; ${acknowledged.size} acknowledged in all, ${lost.length} lost; ${finished} finished, ${retried} retried`,
    );
    expect(lost).toEqual([]);
    void c;
  }, 420_000);
});
