import { describe, expect, it } from "vitest";
import {
  BrokerageInputError,
  decideActivation,
  emptyShareUsage,
  orderForDispatch,
  pickJobsToRelease,
  resolveSharePolicy,
  type ShareUsage,
  type ThrottledJob,
  userPriority,
} from "../../src/brokerage/index.js";

function usage(production: number, analysis: number, extra: Partial<ShareUsage> = {}): ShareUsage {
  const u = emptyShareUsage();
  u.byType.production.running = production;
  u.byType.analysis.running = analysis;
  return { ...u, ...extra };
}

function throttled(jobId: string, overrides: Partial<ThrottledJob> = {}): ThrottledJob {
  return { jobId, user: "alice", type: "production", priority: 100, queuedAtMs: 0, ...overrides };
}

/** A fixed sequence of "random" numbers, so release order is reproducible. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

const NEVER_BY_AGE = sequence(0.99);

describe("decideActivation", () => {
  const policy = resolveSharePolicy({ capacityJobs: 10, analysisFraction: 0.3, groupShares: { higgs: 0.2 } });

  it("activates anything while the site has room", () => {
    expect(decideActivation({ user: "u", type: "analysis" }, usage(0, 9), policy)).toEqual({
      action: "activate",
    });
  });

  it("throttles the type that already holds its share of a full site", () => {
    const full = usage(7, 3);
    const verdict = decideActivation({ user: "u", type: "analysis" }, full, policy);
    expect(verdict).toMatchObject({ action: "throttle", share: "type" });
    if (verdict.action === "throttle")
      expect(verdict.reason).toBe("analysis holds 30% of a full site, share 30%");
    expect(decideActivation({ user: "u", type: "production" }, usage(6, 4), policy)).toEqual({
      action: "activate",
    });
  });

  it("throttles a group over its share", () => {
    const full = usage(8, 2, { byGroup: { higgs: { running: 1, activated: 1 } } });
    const verdict = decideActivation({ user: "u", group: "higgs", type: "analysis" }, full, policy);
    expect(verdict).toMatchObject({ action: "throttle", share: "group" });
    expect(decideActivation({ user: "u", group: "top", type: "analysis" }, full, policy).action).toBe(
      "activate",
    );
  });

  it("holds a user at the quota even when the site has room", () => {
    const small = resolveSharePolicy({ capacityJobs: 100, userActiveJobQuota: 3 });
    const verdict = decideActivation(
      { user: "bob", type: "production" },
      usage(3, 0, { byUser: { bob: 3 } }),
      small,
    );
    expect(verdict).toEqual({
      action: "throttle",
      share: "user",
      reason: "user bob has 3 active jobs, quota 3",
    });
  });

  it("names the bad policy field", () => {
    expect(() => resolveSharePolicy({ capacityJobs: 10, analysisFraction: 1.5 })).toThrow(
      BrokerageInputError,
    );
    expect(() => resolveSharePolicy({ capacityJobs: 10, analysisFraction: 1.5 })).toThrow(/analysisFraction/);
  });
});

describe("pickJobsToRelease", () => {
  const policy = resolveSharePolicy({ capacityJobs: 10, analysisFraction: 0.5, ageOnlyFraction: 0.1 });

  it("releases the most under-served share first, then by priority, then by age", () => {
    const waiting = [
      throttled("prod-high", { priority: 900, queuedAtMs: 5 }),
      throttled("ana-old", { type: "analysis", priority: 100, queuedAtMs: 1 }),
      throttled("ana-high", { type: "analysis", priority: 500, queuedAtMs: 9 }),
      throttled("ana-new", { type: "analysis", priority: 100, queuedAtMs: 7 }),
    ];
    // Analysis runs 1 of 10 against a 50% share: it is served first until it catches up.
    const released = pickJobsToRelease(waiting, usage(9, 1), policy, 3, NEVER_BY_AGE);
    expect(released.map((j) => j.jobId)).toEqual(["ana-high", "ana-old", "ana-new"]);
  });

  it("switches share once the under-served one has caught up", () => {
    const waiting = [
      throttled("ana-1", { type: "analysis" }),
      throttled("prod-1"),
      throttled("ana-2", { type: "analysis" }),
    ];
    const released = pickJobsToRelease(waiting, usage(2, 1), policy, 3, NEVER_BY_AGE);
    // 2 prod / 1 ana -> ana; 2/2 tie -> priority and age tie -> job id (ana-2 < prod-1); then prod.
    expect(released.map((j) => j.jobId)).toEqual(["ana-1", "ana-2", "prod-1"]);
  });

  it("lets a fraction of releases go by age alone so a well-served share does not starve", () => {
    const waiting = [
      throttled("prod-ancient", { priority: 1, queuedAtMs: 0 }),
      throttled("ana", { type: "analysis", priority: 1000, queuedAtMs: 50 }),
    ];
    expect(pickJobsToRelease(waiting, usage(9, 1), policy, 1, sequence(0.05))[0]?.jobId).toBe("prod-ancient");
    expect(pickJobsToRelease(waiting, usage(9, 1), policy, 1, sequence(0.5))[0]?.jobId).toBe("ana");
  });

  it("stops at the free room and leaves users at quota throttled", () => {
    const quota = resolveSharePolicy({ capacityJobs: 10, userActiveJobQuota: 2 });
    const waiting = [throttled("a1"), throttled("a2"), throttled("b1", { user: "bob", queuedAtMs: 9 })];
    const released = pickJobsToRelease(
      waiting,
      usage(1, 0, { byUser: { alice: 1 } }),
      quota,
      5,
      NEVER_BY_AGE,
    );
    expect(released.map((j) => j.jobId)).toEqual(["a1", "b1"]);
    expect(pickJobsToRelease(waiting, usage(0, 0), quota, 1, NEVER_BY_AGE)).toHaveLength(1);
  });

  it("is deterministic for the same random sequence and does not touch the caller's usage", () => {
    const waiting = Array.from({ length: 20 }, (_, i) =>
      throttled(`j${i}`, {
        type: i % 3 === 0 ? "analysis" : "production",
        priority: i % 4,
        queuedAtMs: 20 - i,
      }),
    );
    const current = usage(5, 5);
    const before = structuredClone(current);
    const first = pickJobsToRelease(waiting, current, policy, 10, sequence(0.3, 0.05, 0.8, 0.6));
    const second = pickJobsToRelease(waiting, current, policy, 10, sequence(0.3, 0.05, 0.8, 0.6));
    expect(second).toEqual(first);
    expect(first).toHaveLength(10);
    expect(current).toEqual(before);
  });
});

describe("userPriority", () => {
  it("falls as the user's active job count grows", () => {
    expect(userPriority(1000, 0)).toBe(1000);
    expect(userPriority(1000, 4)).toBe(1000);
    expect(userPriority(1000, 5)).toBe(999);
    expect(userPriority(1000, 500)).toBe(900);
    expect(userPriority(1000, 500, 50)).toBe(990);
  });
});

describe("orderForDispatch", () => {
  it("orders by priority, then age, then job id, without changing its input", () => {
    const jobs = [
      { jobId: "c", priority: 10, queuedAtMs: 3 },
      { jobId: "b", priority: 20, queuedAtMs: 9 },
      { jobId: "a", priority: 10, queuedAtMs: 3 },
      { jobId: "d", priority: 10, queuedAtMs: 1 },
    ];
    expect(orderForDispatch(jobs).map((j) => j.jobId)).toEqual(["b", "d", "a", "c"]);
    expect(jobs[0]?.jobId).toBe("c");
  });
});
