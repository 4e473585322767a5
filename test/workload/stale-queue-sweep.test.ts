import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { queueScore } from "../../src/actors/job/projections.js";
import type { JobContext } from "../../src/actors/job/schema.js";
import { refs } from "../../src/actors/shared/names.js";
import type { CommittedTransition } from "../../src/runtime/shard-host.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { queueNames } from "../../src/store/queue-index.js";
import { readContext } from "../../src/workload/context.js";
import { Grid, type GridConfig } from "../../src/workload/grid.js";
import { findStaleWaits } from "../../src/workload/stale-queue-sweep.js";

const resources = {
  slots: 10,
  memoryPerSlotMb: 4000,
  diskMb: 1_000_000,
  walltimeSec: { min: 0, max: 86_400 },
};
const payload = { command: ["true"] };

/** SITE-A lets a job wait one second; SITE-B the default day. */
const sites = [
  { name: "SITE-A", resources, thresholds: { reassignAfterMs: 1_000 } },
  { name: "SITE-B", resources },
];

describe("the sweep of stale waits", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function node(
    store: MemoryStore,
    index: MemoryQueueIndex,
    config: Partial<GridConfig>,
    beforeStart: (grid: Grid) => void = () => {},
  ) {
    const storageRoot = mkdtempSync(join(tmpdir(), "panda-sweep-"));
    const grid = new Grid({
      store,
      index,
      storageRoot,
      config: { sites, ...config },
      runtime: { shardCount: 8, leaseMs: 500, sweepEveryMs: 200 },
    });
    beforeStart(grid);
    await grid.start();
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await grid.stop();
      rmSync(storageRoot, { recursive: true, force: true });
    };
    cleanups.push(stop);
    // Brokerage skips a site whose pilots were never seen.
    const atMs = Date.now();
    for (const { name } of sites)
      await grid.runtime.send(refs.site(name), { type: "pilot.seen", pilotId: "p-test", atMs });
    return { grid, stop };
  }

  function queuedIn(grid: Grid, jobId: string) {
    return grid.runtime.waitForTransition(refs.job(jobId), (t) => t.state?.value === "activated");
  }

  async function job(grid: Grid, id: string): Promise<{ state: string; context: JobContext } | null> {
    return readContext(grid.ctx, "job", id);
  }

  it("is done by the node that takes over a shard: a job queued under a node that left is reassigned by the next", async () => {
    const store = new MemoryStore();
    const index = new MemoryQueueIndex();
    // The first node never sweeps while it lives.
    const first = await node(store, index, { staleSweepMs: 3_600_000 });
    const activated = queuedIn(first.grid, "t-left-0.1");
    await first.grid.submit({ taskId: "t-left", jobs: 1, payload, site: "SITE-A" }, "alice");
    await activated;
    const queued = await job(first.grid, "t-left-0.1");
    expect(queued?.state).toBe("activated");
    expect(first.grid.runtime.local.size(queueNames.siteQueue("SITE-A", "production", "default"))).toBe(1);
    await first.stop();

    // Listening before it takes the shards, so no transition of the takeover is missed.
    const heard: { made?: Promise<CommittedTransition>; closed?: Promise<CommittedTransition> } = {};
    const next = await node(store, index, { staleSweepMs: 100 }, (g) => {
      heard.made = g.runtime.waitForTransition(refs.job("t-left-0.2"), () => true);
      heard.closed = g.runtime.waitForTransition(refs.job("t-left-0.1"), (t) => t.state?.value === "closed");
    });
    const closed = await heard.closed;
    expect(closed?.entry.event).toMatchObject({
      type: "reassign",
      by: "auto",
      reason: "waited activated at SITE-A longer than its limit of 1000 ms",
      waited: { state: "activated" },
    });
    const view = await job(next.grid, "t-left-0.1");
    expect(view?.context.reassignment).toMatchObject({ by: "auto", site: null });
    // The next attempt is made, counted as a reassignment, not as a failure.
    await heard.made;
    expect((await job(next.grid, "t-left-0.2"))?.context).toMatchObject({ attempt: 2, reassignments: 1 });
  });

  it("finds nothing in a queue whose jobs are younger than their site's limit", async () => {
    const store = new MemoryStore();
    const index = new MemoryQueueIndex();
    const { grid: g } = await node(store, index, { staleSweepMs: 3_600_000 });
    const both = Promise.all([queuedIn(g, "t-young-0.1"), queuedIn(g, "t-young-1.1")]);
    await g.submit({ taskId: "t-young", jobs: 2, payload, site: "SITE-B" }, "alice");
    await both;
    expect(g.runtime.local.size(queueNames.siteQueue("SITE-B", "production", "default"))).toBe(2);
    expect(await findStaleWaits(g.ctx, Date.now())).toEqual([]);
    // A day and a second later, both are stale, each named by the second its wait began.
    const stale = await findStaleWaits(g.ctx, Date.now() + 86_401_000);
    expect(stale.map((s) => [s.jobId, s.state, s.site, s.limitMs])).toEqual([
      ["t-young-0.1", "activated", "SITE-B", 86_400_000],
      ["t-young-1.1", "activated", "SITE-B", 86_400_000],
    ]);
    const activated = (await job(g, "t-young-0.1"))?.context.timestamps.activated ?? 0;
    expect(stale[0]?.sinceSec).toBe(Math.floor(activated / 1000));
  });

  it("finds a job assigned at a site, waiting for its inputs, in the site's assigned list", async () => {
    const { grid: g } = await node(new MemoryStore(), new MemoryQueueIndex(), { staleSweepMs: 3_600_000 });
    // What an assigned job's commit puts in the mirror (its projection): assigned at second 100.
    g.runtime.local.apply(
      0,
      [{ key: queueNames.siteAssigned("SITE-A"), member: "t-in-0.1", score: 100 }],
      [],
    );
    expect(await findStaleWaits(g.ctx, 101_000)).toEqual([]);
    expect(await findStaleWaits(g.ctx, 102_000)).toEqual([
      { jobId: "t-in-0.1", site: "SITE-A", state: "assigned", sinceSec: 100, limitMs: 1_000 },
    ]);
  });

  it("finds every stale wait of each priority, young jobs of a higher priority in front of them or not", async () => {
    const { grid: g } = await node(new MemoryStore(), new MemoryQueueIndex(), { staleSweepMs: 3_600_000 });
    const queue = queueNames.siteQueue("SITE-A", "production", "default");
    // [job, priority, second activated]: at 102 s, with SITE-A's limit of 1 s, what began by second 100 is stale.
    const waits: [string, number, number][] = [
      ["p500-old", 500, 50],
      ["p500-limit", 500, 100],
      ["p500-young", 500, 101],
      ["p10-old", 10, 90],
      ["p10-young", 10, 150],
      ["p10-younger", 10, 160],
      ["p0-young", 0, 200],
      ["n5-old", -5, 99],
    ];
    g.runtime.local.apply(
      0,
      waits.map(([member, priority, sec]) => ({
        key: queue,
        member,
        score: queueScore(priority, sec * 1000),
      })),
      [],
    );
    const stale = await findStaleWaits(g.ctx, 102_000);
    expect(stale.map((s) => [s.jobId, s.sinceSec])).toEqual([
      ["p500-old", 50],
      ["p500-limit", 100],
      ["p10-old", 90],
      ["n5-old", 99],
    ]);
  });
});
