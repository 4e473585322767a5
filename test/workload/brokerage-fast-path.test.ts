import { describe, expect, it } from "vitest";
import {
  type BrokerageConfig,
  type JobNeeds,
  resolveBrokerageConfig,
  type SiteSnapshot,
} from "../../src/brokerage/index.js";
import { decideRecorded } from "../../src/workload/brokerage-fast-path.js";
import { decideOverEverySite } from "../../src/workload/brokerage-service.js";
import { trimDecision } from "../../src/workload/decision-record.js";
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
