import { describe, expect, it } from "vitest";
import {
  DEFAULT_SHARE,
  effectiveShares,
  fairShareConfigSchema,
  MIN_PRIORITY,
  type ShareStanding,
  shareOf,
  shareOrder,
  userPriority,
} from "../../src/brokerage/index.js";
import { gridConfigSchema } from "../../src/workload/grid.js";

const config = fairShareConfigSchema.parse({
  shares: [
    { name: "higgs", percent: 20, match: { groups: ["higgs"] } },
    { name: "analysis", percent: 30, match: { types: ["analysis"] } },
    { name: "production", percent: 50 },
  ],
});

describe("fair share configuration", () => {
  it("defaults to one share, default, holding every job", () => {
    const none = fairShareConfigSchema.parse({});
    expect(effectiveShares(none)).toEqual([{ name: DEFAULT_SHARE, percent: 100, match: {} }]);
    expect(none.ageOnlyEvery).toBe(10);
    expect(none.jobsPerPriorityStep).toBe(5);
  });

  it("refuses shares that do not add up to 100, naming the field", () => {
    const result = gridConfigSchema.safeParse({
      fairShare: {
        shares: [
          { name: "a", percent: 70 },
          { name: "b", percent: 20 },
        ],
      },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["fairShare", "shares"]);
    expect(result.error?.issues[0]?.message).toContain("add up to 90, not 100");
  });

  it("refuses a share named twice, a name that cannot be part of a queue name, and unknown criteria", () => {
    const twice = fairShareConfigSchema.safeParse({
      shares: [
        { name: "a", percent: 50 },
        { name: "a", percent: 50 },
      ],
    });
    expect(twice.error?.issues.map((i) => i.path)).toEqual([["shares", 1, "name"]]);
    const colon = fairShareConfigSchema.safeParse({ shares: [{ name: "a:b", percent: 100 }] });
    expect(colon.error?.issues[0]?.path).toEqual(["shares", 0, "name"]);
    const criterion = fairShareConfigSchema.safeParse({
      shares: [{ name: "a", percent: 100, match: { site: ["X"] } }],
    });
    expect(criterion.error?.issues[0]?.path).toEqual(["shares", 0, "match"]);
    const percent = fairShareConfigSchema.safeParse({ shares: [{ name: "a", percent: 0 }] });
    expect(percent.error?.issues[0]?.path).toEqual(["shares", 0, "percent"]);
  });
});

describe("shareOf", () => {
  const shares = effectiveShares(config);

  it("gives a job the first share that matches it", () => {
    expect(shareOf({ user: "u", group: "higgs", type: "analysis" }, shares)).toBe("higgs");
    expect(shareOf({ user: "u", group: null, type: "analysis" }, shares)).toBe("analysis");
    expect(shareOf({ user: "u", group: "top", type: "production" }, shares)).toBe("production");
  });

  it("gives a job no share matches the last share", () => {
    const strict = effectiveShares(
      fairShareConfigSchema.parse({
        shares: [
          { name: "alice", percent: 70, match: { users: ["alice"] } },
          { name: "bob", percent: 30, match: { users: ["bob"] } },
        ],
      }),
    );
    expect(shareOf({ user: "carol", group: null, type: "production" }, strict)).toBe("bob");
  });
});

describe("userPriority", () => {
  it("lowers an analysis job one point per jobsPerStep active jobs of its user", () => {
    expect(userPriority(1000, "analysis", 0, 5)).toBe(1000);
    expect(userPriority(1000, "analysis", 4, 5)).toBe(1000);
    expect(userPriority(1000, "analysis", 5, 5)).toBe(999);
    expect(userPriority(1000, "analysis", 500, 5)).toBe(900);
    expect(userPriority(1000, "analysis", 500, 50)).toBe(990);
  });

  it("leaves production alone, stays in range, and is off with a step of 0", () => {
    expect(userPriority(1000, "production", 500, 5)).toBe(1000);
    expect(userPriority(1000, "analysis", 500, 0)).toBe(1000);
    expect(userPriority(MIN_PRIORITY + 1, "analysis", 500, 5)).toBe(MIN_PRIORITY);
  });
});

describe("shareOrder", () => {
  const standing = (name: string, target: number, running: number, headSinceSec: number | null = null) =>
    ({ name, target, running, headSinceSec }) satisfies ShareStanding;

  it("serves the most under-served share first: running over target, lowest first", () => {
    const order = shareOrder([standing("a", 0.7, 7), standing("b", 0.3, 2), standing("c", 0, 0)], false);
    expect(order.map((s) => s.name)).toEqual(["b", "a", "c"]);
  });

  it("keeps configuration order between shares equally served", () => {
    const order = shareOrder([standing("a", 0.7, 0), standing("b", 0.3, 0)], false);
    expect(order.map((s) => s.name)).toEqual(["a", "b"]);
  });

  it("on an age pick, serves the share whose best job waited longest, even one with no target", () => {
    const order = shareOrder(
      [standing("a", 0.7, 0, 500), standing("b", 0.3, 9, null), standing("old", 0, 40, 100)],
      true,
    );
    expect(order.map((s) => s.name)).toEqual(["old", "a", "b"]);
  });
});
