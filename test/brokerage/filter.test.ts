import { describe, expect, it } from "vitest";
import { ERROR_CLASSES, SITE_ERROR_CLASSES } from "../../src/actors/shared/schemas.js";
import {
  broker,
  DEFAULT_BROKERAGE_CONFIG,
  type FilterName,
  type JobNeeds,
  resolveBrokerageConfig,
  type SiteSnapshot,
} from "../../src/brokerage/index.js";
import { job, NOW_MS, site } from "./fixtures.js";

const HOUR_MS = 3_600_000;

function exclusionsOf(s: SiteSnapshot, j: JobNeeds = job()) {
  const decision = broker({ job: j, sites: [s], nowMs: NOW_MS });
  return decision.candidates[0]?.excluded ?? [];
}

describe("brokerage filters", () => {
  const cases: { name: string; filter: FilterName; reason: RegExp; site: SiteSnapshot; job?: JobNeeds }[] = [
    {
      name: "offline site",
      filter: "status",
      reason: /site status is offline/,
      site: site("S", { status: "offline" }),
    },
    {
      name: "brokeroff site",
      filter: "status",
      reason: /site status is brokeroff/,
      site: site("S", { status: "brokeroff" }),
    },
    {
      name: "test site, ordinary job",
      filter: "status",
      reason: /test status and the job is not a test job/,
      site: site("S", { status: "test" }),
    },
    {
      name: "more cores than slots",
      filter: "cores",
      reason: /needs 8 cores, site has 4 slots/,
      site: site("S", { resources: { slots: 4 } }),
      job: job({ cores: 8, memoryMb: 100 }),
    },
    {
      name: "memory above 90% of the slot",
      filter: "memory",
      reason: /needs 1900 MB of memory, site offers 1800 MB usable/,
      site: site("S"),
      job: job({ memoryMb: 1900 }),
    },
    {
      name: "disk",
      filter: "disk",
      reason: /needs 60000 MB of disk, site has 50000 MB/,
      site: site("S"),
      job: job({ diskMb: 60_000 }),
    },
    {
      name: "walltime above the maximum",
      filter: "walltime",
      reason: /at most 86400 s/,
      site: site("S"),
      job: job({ walltimeSec: 100_000 }),
    },
    {
      name: "walltime below the minimum",
      filter: "walltime",
      reason: /only jobs of 7200 s or more/,
      site: site("S", { resources: { minWalltimeSec: 7200 } }),
    },
    {
      name: "release missing",
      filter: "release",
      reason: /release Athena-25.1 is not installed/,
      site: site("S"),
      job: job({ release: "Athena-25.1" }),
    },
    {
      name: "user not allowed",
      filter: "access",
      reason: /user alice \(group atlas\) is not allowed/,
      site: site("S", { allowedUsers: ["bob"], allowedGroups: ["cms"] }),
      job: job({ group: "atlas" }),
    },
    {
      name: "pilots silent for 4 h",
      filter: "pilots",
      reason: /no pilot seen for 4 h \(limit 3 h\)/,
      site: site("S", { stats: { pilots: 0, lastPilotSeenMs: NOW_MS - 4 * HOUR_MS } }),
    },
    {
      name: "no pilot ever",
      filter: "pilots",
      reason: /no pilot has ever been seen/,
      site: site("S", { stats: { pilots: 0 } }),
    },
    {
      name: "too many transferring",
      filter: "transferring",
      reason: /41 jobs transferring exceeds the cap of 40/,
      site: site("S", { stats: { running: 20, transferring: 41 } }),
    },
    {
      name: "queue capped",
      filter: "queueCap",
      reason: /21 jobs queued exceeds the cap of 20/,
      site: site("S", { stats: { running: 5, queued: 21 } }),
    },
    {
      name: "analysis black hole",
      filter: "blackHole",
      reason: /analysis skipped: 30 recent failed\+closed jobs against 10 finished \(limit 20\)/,
      site: site("S", { stats: { recentFinished: 10, recentFailed: { stagein: 25 }, recentClosed: 5 } }),
      job: job({ type: "analysis" }),
    },
  ];

  for (const c of cases) {
    it(`excludes with a reason: ${c.name}`, () => {
      const exclusions = exclusionsOf(c.site, c.job);
      expect(exclusions).toHaveLength(1);
      expect(exclusions[0]?.filter).toBe(c.filter);
      expect(exclusions[0]?.reason).toMatch(c.reason);
    });
  }

  it("lists every failed filter, not only the first", () => {
    const s = site("S", { status: "offline", resources: { releases: [] } });
    expect(exclusionsOf(s, job({ memoryMb: 5000 })).map((e) => e.filter)).toEqual([
      "status",
      "memory",
      "release",
    ]);
  });

  it("lets test jobs onto test sites", () => {
    expect(exclusionsOf(site("S", { status: "test" }), job({ isTest: true }))).toEqual([]);
  });

  it("gives a multi-core job the memory of every slot it takes", () => {
    expect(exclusionsOf(site("S"), job({ cores: 4, memoryMb: 7200 }))).toEqual([]);
    expect(exclusionsOf(site("S"), job({ cores: 4, memoryMb: 7201 }))[0]?.filter).toBe("memory");
  });

  it("admits a job by its group when the user is not listed", () => {
    const s = site("S", { allowedUsers: ["bob"], allowedGroups: ["atlas"] });
    expect(exclusionsOf(s, job({ group: "atlas" }))).toEqual([]);
  });

  it("counts connected pilots as seen now and honours the configured window", () => {
    const stale = { pilots: 0, lastPilotSeenMs: NOW_MS - 2 * HOUR_MS };
    expect(exclusionsOf(site("S", { stats: stale }))).toEqual([]);
    expect(exclusionsOf(site("S", { stats: { pilots: 1, lastPilotSeenMs: 0 } }))).toEqual([]);
    const decision = broker({
      job: job(),
      sites: [site("S", { stats: stale })],
      nowMs: NOW_MS,
      config: resolveBrokerageConfig({ pilotSilenceWindowMs: HOUR_MS }),
    });
    expect(decision.candidates[0]?.excluded?.[0]?.reason).toMatch(/no pilot seen for 2 h \(limit 60 min\)/);
  });

  it("caps the queue at max(20, 2 x running)", () => {
    const queueCap = (queued: number, running: number) =>
      exclusionsOf(site("S", { stats: { queued, running } })).some((e) => e.filter === "queueCap");
    expect(queueCap(20, 0)).toBe(false);
    expect(queueCap(21, 0)).toBe(true);
    expect(queueCap(30, 15)).toBe(false);
    expect(queueCap(31, 15)).toBe(true);
  });

  it("does not count users' failures (payload errors, walltime overruns) against a site", () => {
    const usersFault = site("S", { stats: { recentFinished: 0, recentFailed: { payload: 25, timeout: 5 } } });
    expect(exclusionsOf(usersFault, job({ type: "analysis" }))).toEqual([]);
    const sitesFault = site("S", { stats: { recentFinished: 0, recentFailed: { stagein: 25 } } });
    expect(exclusionsOf(sitesFault, job({ type: "analysis" }))[0]?.filter).toBe("blackHole");
  });

  it("blames a site for exactly the failures the site actor blames it for", () => {
    const neutral = DEFAULT_BROKERAGE_CONFIG.siteNeutralErrorClasses;
    expect([...ERROR_CLASSES].filter((c) => !neutral.includes(c)).sort()).toEqual(
      [...SITE_ERROR_CLASSES].sort(),
    );
  });

  it("skips black-hole sites for analysis only, not counting kills against the site", () => {
    const blackHole = site("S", { stats: { recentFinished: 5, recentFailed: { stagein: 20 } } });
    expect(exclusionsOf(blackHole, job({ type: "analysis" }))[0]?.filter).toBe("blackHole");
    expect(exclusionsOf(blackHole, job({ type: "production" }))).toEqual([]);
    const userKills = site("S", { stats: { recentFinished: 5, recentFailed: { killed: 100 } } });
    expect(exclusionsOf(userKills, job({ type: "analysis" }))).toEqual([]);
    // Below the minimum a handful of failures at a quiet site is not a black hole.
    const quiet = site("S", { stats: { recentFinished: 0, recentFailed: { payload: 19 } } });
    expect(exclusionsOf(quiet, job({ type: "analysis" }))).toEqual([]);
  });
});
