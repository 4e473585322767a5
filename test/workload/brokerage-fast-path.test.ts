import { describe, expect, it } from "vitest";
import { refs } from "../../src/actors/shared/names.js";
import {
  type BrokerageConfig,
  type JobNeeds,
  resolveBrokerageConfig,
  type SiteSnapshot,
} from "../../src/brokerage/index.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { decideRecorded } from "../../src/workload/brokerage-fast-path.js";
import {
  type BrokerRequest,
  decideAmong,
  decideOverEverySite,
  locateInputs,
  usesFastPath,
} from "../../src/workload/brokerage-service.js";
import type { WorkloadContext } from "../../src/workload/context.js";
import { trimDecision } from "../../src/workload/decision-record.js";
import { Grid } from "../../src/workload/grid.js";
import { siteSnapshotOf } from "../../src/workload/site-snapshot.js";
import { ensureSite, listSites } from "../../src/workload/sites.js";
import { NOW_MS, seededStream } from "../brokerage/fixtures.js";

const HOUR_MS = 3_600_000;

function pick<T>(next: () => number, options: readonly T[]): T {
  return options[Math.floor(next() * options.length)]!;
}

/**
 * A grid of varied sites: many share their statistics (equal scores, so ties
 * are broken by name), names in mixed case (name order and rank order differ
 * on them), pilots silent around the 3-hour window, some sites offline or
 * restricted to some users.
 */
function randomGrid(next: () => number, nowMs: number): readonly SiteSnapshot[] {
  const count = 6 + Math.floor(next() * 120);
  const restricted = next() < 0.3;
  const templates = Array.from({ length: 1 + Math.floor(next() * 4) }, () => ({
    queued: Math.floor(next() * 80),
    activated: Math.floor(next() * 40),
    assigned: Math.floor(next() * 60),
    running: Math.floor(next() * 200),
    transferring: Math.floor(next() * 30),
  }));
  const sites = Array.from({ length: count }, (_, i): SiteSnapshot => {
    const pilots = next() < 0.6 ? 1 + Math.floor(next() * 5) : 0;
    const lastSeen = next() < 0.15 ? undefined : nowMs - Math.floor(next() * 4 * HOUR_MS);
    const shared = next() < 0.6;
    const recentFailed: Record<string, number> = shared
      ? {}
      : { pilot: Math.floor(next() * 30), payload: Math.floor(next() * 30) };
    return Object.freeze({
      name: `${pick(next, ["T1", "t2", "T2", "ANALY_T2", "b", "B"])}-${i}`,
      status: pick(next, ["online", "online", "online", "online", "offline", "test", "brokeroff"] as const),
      resources: {
        slots: pick(next, [1, 100, 3000]),
        memoryMbPerSlot: pick(next, [2000, 3000]),
        diskMb: 50_000,
        maxWalltimeSec: pick(next, [86_400, 172_800]),
        releases: pick(next, [["production"], ["analysis"], ["production", "analysis"]]),
      },
      ...(restricted && next() < 0.3 ? { allowedUsers: ["alice"], allowedGroups: ["atlas"] } : {}),
      stats: {
        ...(shared
          ? pick(next, templates)
          : {
              queued: Math.floor(next() * 80),
              activated: Math.floor(next() * 40),
              assigned: Math.floor(next() * 60),
              running: Math.floor(next() * 200),
              transferring: Math.floor(next() * 30),
            }),
        pilots,
        pilotRequestRatePerMin: shared ? 2 : next() * 20,
        ...(lastSeen !== undefined ? { lastPilotSeenMs: lastSeen } : {}),
        recentFinished: shared ? 50 : Math.floor(next() * 100),
        recentFailed,
        recentClosed: shared ? 0 : Math.floor(next() * 5),
      },
    });
  });
  return Object.freeze(sites);
}

/** A job of a few recurring shapes, with inputs some sites hold and sites it failed at before. */
function randomJob(next: () => number, index: number, sites: readonly SiteSnapshot[]) {
  const lfns = Array.from({ length: Math.floor(next() * 4) }, (_, i) => `f${index}-${i}`);
  const inputs = lfns.map((lfn) => ({ lfn, sizeBytes: pick(next, [0, 5e7, 2e9]) }));
  const type = pick(next, ["production", "analysis"] as const);
  const job: JobNeeds = {
    jobId: `job-${index}`,
    taskId: `task-${index % 7}`,
    user: pick(next, ["alice", "bob"]),
    ...(next() < 0.5 ? { group: pick(next, ["atlas", "cms"]) } : {}),
    type,
    priority: Math.floor(next() * 2000),
    cores: 1,
    memoryMb: pick(next, [1000, 1800, 2500]),
    diskMb: 10_000,
    walltimeSec: pick(next, [3600, 100_000]),
    ...(next() < 0.9 ? { release: type } : {}),
    inputs: next() < 0.1 && inputs.length > 0 ? [...inputs, inputs[0]!] : inputs,
    ...(next() < 0.05 ? { isTest: true } : {}),
  };
  const replicas: Record<string, string[]> = {};
  for (let i = Math.floor(next() * 4); i > 0 && lfns.length > 0; i--) {
    const holder = next() < 0.1 ? "NOT-IN-GRID" : pick(next, sites).name;
    replicas[holder] = lfns.filter(() => next() < 0.7);
  }
  const excludedSites = Array.from({ length: next() < 0.7 ? 0 : 1 + Math.floor(next() * 3) }, () =>
    next() < 0.1 ? "NOT-IN-GRID" : pick(next, sites).name,
  );
  const random = pick(next, [0, next(), next(), next(), 1 - 2 ** -53]);
  return { job, replicas, excludedSites, random };
}

describe("brokerage's fast path", () => {
  it("records exactly the trimmed decision over every site, on randomized grids", () => {
    const next = seededStream(2026);
    let decisions = 0;
    let drawn = 0;
    for (let grid = 0; grid < 60; grid++) {
      let nowMs = NOW_MS;
      const sites = randomGrid(next, nowMs);
      const config: BrokerageConfig = resolveBrokerageConfig({
        randomTopCandidates: pick(next, [1, 2, 5, 1000]),
        queueCapMin: pick(next, [20, 50]),
      });
      const maxRecorded = Math.min(sites.length - 1, pick(next, [1, 3, 5, 8]));
      for (let j = 0; j < 80; j++) {
        // Time passes within one read of the sites: silent sites' pilots cross the window.
        nowMs += pick(next, [0, 0, 1000, 60_000, 20 * 60_000]);
        const { job, replicas, excludedSites, random } = randomJob(next, grid * 1000 + j, sites);
        const input = { job, sites, replicas, excludedSites, nowMs, config, random };
        const fast = decideRecorded({ ...input, maxRecorded });
        const whole = trimDecision(decideOverEverySite({ ...input, requestedSite: null }), maxRecorded);
        expect(fast).toStrictEqual(whole);
        // Field for field in the same order: the same bytes in the job's history.
        expect(JSON.stringify(fast)).toBe(JSON.stringify(whole));
        decisions++;
        if (whole.draw) drawn++;
      }
    }
    expect(decisions).toBe(4800);
    // Most decisions drew among several sites; some had no site at all or only one.
    expect(drawn).toBeGreaterThan(decisions / 2);
  });

  it("decides on a grid of 300 sites as over every site, for jobs with inputs at some sites and failed attempts", () => {
    const next = seededStream(7);
    const nowMs = NOW_MS;
    const sites = Object.freeze(
      Array.from({ length: 300 }, (_, i) =>
        Object.freeze({
          name: `T2-${i}`,
          status: "online" as const,
          resources: {
            slots: 100,
            memoryMbPerSlot: 2000,
            diskMb: 50_000,
            maxWalltimeSec: 172_800,
            releases: ["production"],
          },
          stats: {
            queued: i % 7,
            activated: 0,
            assigned: 0,
            running: (i * 37) % 101,
            pilots: 1,
            pilotRequestRatePerMin: 2,
            transferring: 0,
            recentFinished: 50,
            recentFailed: {},
            recentClosed: 0,
          },
        }),
      ),
    );
    const config = resolveBrokerageConfig({ randomTopCandidates: 1000 });
    for (let j = 0; j < 200; j++) {
      const { job, replicas, excludedSites, random } = randomJob(next, j, sites);
      // A production job every site fits: the draw is among every site but those it failed at.
      const { isTest: _isTest, ...fitting } = job;
      const input = {
        job: { ...fitting, type: "production" as const, release: "production", memoryMb: 1800 },
        sites,
        replicas,
        excludedSites,
        nowMs,
        config,
        random,
      };
      const fast = decideRecorded({ ...input, maxRecorded: 5 });
      expect(fast).toStrictEqual(trimDecision(decideOverEverySite({ ...input, requestedSite: null }), 5));
      expect(fast.draw?.among).toBe(300 - new Set(excludedSites.filter((s) => s !== "NOT-IN-GRID")).size);
      expect(fast.candidates).toHaveLength(5);
    }
  });
});

describe("the brokerage service", () => {
  it("decides the same whether it keeps its read of the sites (fast path) or not", async () => {
    const grid = new Grid({
      store: new MemoryStore(),
      index: new MemoryQueueIndex(),
      storageRoot: "",
      config: {
        sites: [],
        brokerage: { randomTopCandidates: 1000 },
        maxRecordedCandidates: 3,
        siteStatsTtlMs: 60_000,
      },
      log: silentLogger,
    });
    await grid.start();
    try {
      const names = Array.from({ length: 12 }, (_, i) => `SITE-${i}`);
      for (const [i, name] of names.entries()) {
        await ensureSite(grid.ctx, {
          name,
          resources: {
            slots: 100 * (i + 1),
            memoryPerSlotMb: i % 4 === 3 ? 1000 : 2000,
            diskMb: 50_000,
            walltimeSec: { min: 0, max: 86_400 },
            releases: ["production"],
          },
          atMs: NOW_MS,
        });
      }
      const files = Array.from({ length: 6 }, (_, i) => ({
        lfn: `in.${i}`,
        sizeBytes: 1e9,
        checksum: "ad:1",
      }));
      // Files at two sites: jobs reading them weigh those sites again, with their locality.
      await grid.runtime.send(
        refs.dataset("in"),
        {
          type: "create",
          input: {
            name: "in",
            state: "closed",
            files,
            replicas: { "SITE-2": ["in.0", "in.1", "in.2"], "SITE-7": ["in.2", "in.3"] },
            atMs: NOW_MS,
          },
        },
        { eventId: "test:dataset:in" },
      );
      const nowMs = NOW_MS + 1000;
      const snapshots = Object.freeze(
        (await listSites(grid.ctx)).map((site) => Object.freeze(siteSnapshotOf(site, 2, nowMs))),
      );
      const fresh: WorkloadContext = { ...grid.ctx, settings: { ...grid.ctx.settings, siteStatsTtlMs: 0 } };
      for (let j = 0; j < 40; j++) {
        const request: BrokerRequest = {
          jobId: `task-${j}.1`,
          taskId: "task",
          attempt: 1,
          type: "production",
          user: "prod",
          group: null,
          priority: 1000,
          resources: { cores: 1, memoryMb: 1500, diskMb: 2000, walltimeSec: 3600 },
          release: "production",
          inputs: files.slice(j % 5, (j % 5) + 2).map((f) => ({ ...f, dataset: "in" })),
          excludedSites: j % 3 === 0 ? ["SITE-2", "SITE-4"] : [],
          requestedSite: null,
        };
        expect(usesFastPath(grid.ctx, request, snapshots)).toBe(true);
        expect(usesFastPath(fresh, request, snapshots)).toBe(false);
        const locations = await locateInputs(grid.ctx, request.inputs);
        const fast = decideAmong(grid.ctx, request, nowMs, snapshots, locations);
        const whole = decideAmong(fresh, request, nowMs, snapshots, locations);
        expect(fast).toStrictEqual(whole);
        expect(fast.candidates).toHaveLength(3);
        // Every job but those reading in.4 and in.5 (no replica) has inputs at SITE-2 or SITE-7.
        expect(Object.keys(locations.replicas).length > 0).toBe(j % 5 !== 4);
        expect(fast.draw?.among).toBe(j % 3 === 0 ? 7 : 9);
      }
    } finally {
      await grid.stop();
    }
  });
});
