import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { refs } from "../../src/actors/shared/names.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { Grid } from "../../src/workload/grid.js";
import { siteSnapshotOf } from "../../src/workload/site-snapshot.js";
import { siteSnapshots, snapshotsInMemory } from "../../src/workload/site-stats-cache.js";
import { listSites } from "../../src/workload/sites.js";

const resources = {
  slots: 10,
  memoryPerSlotMb: 4000,
  diskMb: 1_000_000,
  walltimeSec: { min: 0, max: 86_400 },
};

/** SITE-A's windows are short, so buckets leave them within the test's (given) times. */
const sites = [
  { name: "SITE-A", resources, thresholds: { failureWindowMs: 1_200, pilotWindowMs: 1_000 } },
  { name: "SITE-B", resources },
  { name: "SITE-C", resources },
];

describe("brokerage's read of the sites from memory", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function grid() {
    const storageRoot = mkdtempSync(join(tmpdir(), "panda-site-reads-"));
    const g = new Grid({
      store: new MemoryStore(),
      index: new MemoryQueueIndex(),
      storageRoot,
      config: { sites },
      runtime: { shardCount: 4 },
    });
    await g.start();
    cleanups.push(async () => {
      await g.stop();
      rmSync(storageRoot, { recursive: true, force: true });
    });
    return g;
  }

  /** What a read of every site from the store makes of them at `nowMs`: what the memory's read must equal. */
  async function rebuilt(g: Grid, nowMs: number) {
    const all = await listSites(g.ctx);
    return all.map((site) => siteSnapshotOf(site, g.ctx.connectedPilots(site.name), nowMs));
  }

  async function expectSameAsRebuilt(g: Grid, nowMs: number) {
    const fromMemory = snapshotsInMemory(g.ctx, nowMs);
    expect(fromMemory).not.toBeNull();
    expect(fromMemory).toEqual(await rebuilt(g, nowMs));
    return fromMemory!;
  }

  it("is the read a rebuild of every site makes, as sites, counts and time change, and reuses what did not change", async () => {
    const g = await grid();
    const startMs = Date.now();
    // The first read names the sites (from the store); the reads after it are from memory.
    await siteSnapshots(g.ctx, startMs);
    const first = await expectSameAsRebuilt(g, startMs);

    // Outcomes and a pilot's requests at SITE-A.
    const atMs = Date.now();
    for (const [jobId, to, errorClass] of [
      ["j-1", "finished", undefined],
      ["j-2", "failed", "pilot"],
      ["j-3", "failed", "payload"],
    ] as const)
      await g.runtime.send(refs.site("SITE-A"), {
        type: "job.state",
        jobId,
        from: "running",
        to,
        jobType: "production",
        ...(errorClass ? { errorClass } : {}),
        atMs,
      });
    await g.runtime.send(refs.site("SITE-A"), { type: "pilot.seen", pilotId: "p-1", requests: 3, atMs });
    const nowMs = Date.now();
    const second = await expectSameAsRebuilt(g, nowMs);
    // SITE-A changed and is built again; the others are the same objects as in the first read.
    expect(second[0]!.stats.recentFinished).toBe(1);
    expect(second[0]).not.toBe(first[0]);
    expect(second[1]).toBe(first[1]);
    expect(second[2]).toBe(first[2]);

    // Live jobs of a task brokered to SITE-C change its counts, not its actor.
    await g.runtime.send(refs.site("SITE-C"), { type: "pilot.seen", pilotId: "p-2", atMs: Date.now() });
    const queued = g.runtime.waitForTransition(refs.job("t-c-1.1"), (t) => t.state?.value === "activated");
    await g.submit({ taskId: "t-c", jobs: 2, payload: { command: ["true"] }, site: "SITE-C" }, "alice");
    await queued;
    const third = await expectSameAsRebuilt(g, Date.now());
    expect(third[2]!.stats.activated).toBeGreaterThan(0);

    // Counts alone: SITE-C's snapshot takes its new live counts and keeps the rest of the last one.
    const more = g.runtime.waitForTransition(refs.job("t-d-0.1"), (t) => t.state?.value === "activated");
    await g.submit({ taskId: "t-d", jobs: 1, payload: { command: ["true"] }, site: "SITE-C" }, "alice");
    await more;
    const fourth = await expectSameAsRebuilt(g, Date.now());
    expect(fourth[2]!.stats.activated).toBe(third[2]!.stats.activated + 1);
    expect(fourth[2]).not.toBe(third[2]);
    expect(fourth[2]!.resources).toBe(third[2]!.resources);

    // Time alone: SITE-A's pilot requests leave their window, then its outcomes leave theirs.
    for (const laterMs of [100, 1_050, 1_300, 1_500, 5_000])
      await expectSameAsRebuilt(g, Date.now() + laterMs);
    const late = await expectSameAsRebuilt(g, Date.now() + 5_000);
    expect(late[0]!.stats.recentFinished).toBe(0);
    expect(late[0]!.stats.pilotRequestRatePerMin).toBe(0);
  });
});
