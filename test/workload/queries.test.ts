import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { catalogQueues } from "../../src/store/index-names.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { Grid } from "../../src/workload/grid.js";
import {
  type JobQuery,
  queryDatasets,
  queryJobs,
  querySubscriptions,
  queryTasks,
} from "../../src/workload/queries.js";
import { subscribeDataset } from "../../src/workload/replication.js";
import { FakePilots } from "../support/fake-pilots.js";

const resources = {
  slots: 50,
  memoryPerSlotMb: 4000,
  diskMb: 1_000_000,
  walltimeSec: { min: 0, max: 86_400 },
};
const payload = { command: ["true"] };

/** The query planners called directly on a grid, without the HTTP API in front. */
describe("workload queries", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function boot() {
    const storageRoot = mkdtempSync(join(tmpdir(), "panda-queries-"));
    const grid = new Grid({
      store: new MemoryStore(),
      index: new MemoryQueueIndex(),
      storageRoot,
      config: {
        sites: [
          { name: "A", resources },
          { name: "B", resources },
        ],
        transfer: { retryBaseDelayMs: 10 },
      },
      runtime: { shardCount: 8, sweepEveryMs: 200 },
    });
    const fake = new FakePilots(grid, {
      A: { slots: 50, behaviour: { kind: "finish" } },
      B: { slots: 50, behaviour: { kind: "fail", errorClass: "payload", exitCode: 3 } },
    });
    await grid.start();
    cleanups.push(async () => {
      fake.close();
      await grid.stop();
      rmSync(storageRoot, { recursive: true, force: true });
    });
    return grid;
  }

  async function runTask(grid: Grid, taskId: string, site: string, user: string, jobs: number) {
    const ended = grid.runtime.waitForTransition(
      { kind: "task", id: taskId },
      (t) => t.state?.status === "done",
    );
    // No retries: a failed job stays one failed attempt.
    await grid.submit({ taskId, site, jobs, payload, retry: { maxAttempts: 1 } }, user);
    await ended;
  }

  it("lists tasks newest first, filtered by user and state, a page at a time", async () => {
    const grid = await boot();
    await runTask(grid, "t1", "A", "alice", 1);
    await runTask(grid, "t2", "B", "bob", 1);
    await runTask(grid, "t3", "A", "alice", 1);
    const all = await queryTasks(grid.ctx, { offset: 0, limit: 10 });
    expect(all.tasks.map((t) => t.context.taskId)).toEqual(["t3", "t2", "t1"]);
    expect(all.nextOffset).toBeNull();
    const alice = await queryTasks(grid.ctx, { user: "alice", offset: 0, limit: 1 });
    expect(alice.tasks.map((t) => t.context.taskId)).toEqual(["t3"]);
    expect(alice.nextOffset).toBe(1);
    const next = await queryTasks(grid.ctx, { user: "alice", offset: 1, limit: 1 });
    expect(next.tasks.map((t) => t.context.taskId)).toEqual(["t1"]);
    const failed = await queryTasks(grid.ctx, { state: "failed", offset: 0, limit: 10 });
    expect(failed.tasks.map((t) => t.context.taskId)).toEqual(["t2"]);
  });

  it("finds jobs by task, state, site, user and the time they entered their state", async () => {
    const grid = await boot();
    await runTask(grid, "ta", "A", "alice", 3);
    const betweenMs = grid.runtime.clock.nowMs();
    await runTask(grid, "tb", "B", "bob", 2);
    const ids = async (query: Partial<JobQuery>) =>
      (await queryJobs(grid.ctx, { offset: 0, limit: 100, ...query })).jobs
        .map((j) => j.context.jobId)
        .sort();
    expect(await ids({ task: "ta" })).toEqual(["ta-0.1", "ta-1.1", "ta-2.1"]);
    expect(await ids({ state: "failed" })).toEqual(["tb-0.1", "tb-1.1"]);
    expect(await ids({ site: "A", state: "finished" })).toEqual(["ta-0.1", "ta-1.1", "ta-2.1"]);
    expect(await ids({ user: "bob" })).toEqual(["tb-0.1", "tb-1.1"]);
    expect(await ids({ until: betweenMs })).toEqual(["ta-0.1", "ta-1.1", "ta-2.1"]);
    expect(await ids({ since: betweenMs + 1, state: "failed" })).toEqual(["tb-0.1", "tb-1.1"]);
    // No job is running: the live-job counters answer without reading a job.
    expect(await ids({ state: "running" })).toEqual([]);
    const page = await queryJobs(grid.ctx, { task: "ta", offset: 1, limit: 1 });
    expect(page.jobs).toHaveLength(1);
    expect(page.nextOffset).toBe(2);
  });

  it("matches dataset names by wildcard and lists subscriptions by site and dataset", async () => {
    const grid = await boot();
    for (const name of ["mc.alpha", "mc.beta", "data.gamma"]) {
      await grid.putFiles(name, "A", [{ lfn: `${name}.f1`, bytes: Buffer.from(name) }]);
      await grid.ctx.index.add(catalogQueues.datasets, name, 0);
    }
    const names = (await queryDatasets(grid.ctx, { pattern: "mc.*", limit: 10 })).map((d) => d.context.name);
    expect(names.sort()).toEqual(["mc.alpha", "mc.beta"]);
    expect(await queryDatasets(grid.ctx, { pattern: "mc.?eta", limit: 10 })).toHaveLength(1);
    const { subscription: subscriptionId } = await subscribeDataset(grid.ctx, "mc.alpha", "B");
    await grid.ctx.index.add(catalogQueues.subscriptions, subscriptionId, 1);
    const atB = await querySubscriptions(grid.ctx, { site: "B", limit: 10 });
    expect(atB.map((s) => s.context.dataset)).toEqual(["mc.alpha"]);
    expect(await querySubscriptions(grid.ctx, { site: "A", limit: 10 })).toEqual([]);
    expect(await querySubscriptions(grid.ctx, { dataset: "mc.beta", limit: 10 })).toEqual([]);
  });
});
