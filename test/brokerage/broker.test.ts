import { describe, expect, it, vi } from "vitest";
import {
  BrokerageInputError,
  broker,
  parseBrokerageInput,
  resolveBrokerageConfig,
} from "../../src/brokerage/index.js";
import { GB, inputs, job, NOW_MS, site } from "./fixtures.js";

describe("broker", () => {
  it("sends the job where most of its input already is, and moves only the rest", () => {
    const files = inputs(10, GB);
    const decision = broker({
      job: job({ inputs: files }),
      sites: [site("ALPHA"), site("BETA")],
      replicas: { ALPHA: ["f0", "f1"], BETA: ["f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"] },
      nowMs: NOW_MS,
    });
    expect(decision.chosenSite).toBe("BETA");
    expect(decision.filesToMove).toEqual(["f0", "f1"]);
    expect(decision.bytesToMove).toBe(2 * GB);
    expect(decision.atMs).toBe(NOW_MS);
    const [best, other] = decision.candidates;
    expect(best?.components.locality).toBeCloseTo(1.8 / 1.02);
    expect(other?.components.locality).toBeCloseTo(1.2 / 1.08);
    expect(best?.components.localBytes).toBe(8 * GB);
  });

  it("lists every site with either a score or its exclusion reasons", () => {
    const sites = [
      site("A"),
      site("B", { status: "offline" }),
      site("C", { stats: { queued: 500 } }),
      site("D", { resources: { releases: [] } }),
      site("E", { stats: { running: 50 } }),
    ];
    const decision = broker({ job: job(), sites, nowMs: NOW_MS });
    expect(decision.candidates.map((c) => c.site).sort()).toEqual(["A", "B", "C", "D", "E"]);
    for (const c of decision.candidates) {
      expect(c.score === undefined).toBe(c.excluded !== undefined);
      if (c.excluded) expect(c.excluded.length).toBeGreaterThan(0);
      expect(c.components.load).toBeGreaterThan(0);
    }
    // Eligible sites come first, best first; the busier-running site E wins on load.
    expect(decision.candidates.map((c) => c.site)).toEqual(["E", "A", "B", "C", "D"]);
    expect(decision.chosenSite).toBe("E");
  });

  it("chooses nothing and moves nothing when every site is excluded", () => {
    const decision = broker({
      job: job({ inputs: inputs(2, GB) }),
      sites: [site("A", { status: "offline" })],
      nowMs: NOW_MS,
    });
    expect(decision.chosenSite).toBeNull();
    expect(decision.filesToMove).toEqual([]);
    expect(decision.bytesToMove).toBe(0);
  });

  it("uses JEDI's load weight, damped when many jobs are assigned", () => {
    const decision = broker({
      job: job(),
      sites: [site("A", { stats: { running: 9, queued: 30, activated: 5, assigned: 40 } })],
      nowMs: NOW_MS,
      config: resolveBrokerageConfig({ queueCapMin: 100 }),
    });
    const c = decision.candidates[0]!;
    expect(c.components.load).toBeCloseTo(10 / 40);
    expect(c.components.assignedDamping).toBeCloseTo(20 / 40);
  });

  it("penalises recent failures and favours frequent pilot requests", () => {
    const decision = broker({
      job: job(),
      sites: [
        site("FAILING", { stats: { recentFinished: 50, recentFailed: { pilot: 45 } } }),
        site("FLAKY_BUT_EAGER", {
          stats: { recentFinished: 50, recentFailed: { pilot: 5 }, pilotRequestRatePerMin: 30 },
        }),
        site("STEADY", { stats: { recentFinished: 50, recentFailed: { pilot: 5 } } }),
      ],
      nowMs: NOW_MS,
    });
    const byName = new Map(decision.candidates.map((c) => [c.site, c]));
    expect(byName.get("FAILING")!.components.failure).toBeLessThan(byName.get("STEADY")!.components.failure);
    expect(byName.get("FLAKY_BUT_EAGER")!.components.pilotRate).toBeCloseTo(1.75);
    expect(decision.candidates.map((c) => c.site)).toEqual(["FLAKY_BUT_EAGER", "STEADY", "FAILING"]);
  });

  it("lets a weight of 0 switch a component off", () => {
    const input = {
      job: job({ inputs: inputs(4, GB) }),
      sites: [site("A"), site("B")],
      replicas: { B: ["f0", "f1", "f2", "f3"] },
      nowMs: NOW_MS,
    };
    expect(broker(input).chosenSite).toBe("B");
    const noLocality = resolveBrokerageConfig({ weights: { locality: 0 } });
    expect(broker({ ...input, config: noLocality }).chosenSite).toBe("A");
  });

  describe("determinism", () => {
    const sites = [
      site("C"),
      site("A"),
      site("B", { stats: { running: 30 } }),
      site("D", { status: "offline" }),
    ];

    it("gives the same decision for the same input, whatever the order of sites", () => {
      const input = { job: job(), sites, nowMs: NOW_MS };
      const first = broker(input);
      expect(broker(input)).toEqual(first);
      expect(broker({ ...input, sites: [...sites].reverse() })).toEqual(first);
    });

    it("breaks ties by site name", () => {
      const decision = broker({
        job: job(),
        sites: [site("ZULU"), site("ALPHA"), site("MIKE")],
        nowMs: NOW_MS,
      });
      expect(decision.chosenSite).toBe("ALPHA");
      expect(decision.candidates.map((c) => c.site)).toEqual(["ALPHA", "MIKE", "ZULU"]);
    });

    it("picks among the best in proportion to score with an injected random number, never Math.random", () => {
      const spy = vi.spyOn(Math, "random");
      const twoEqual = [site("ALPHA"), site("BETA")];
      const pick = (random: number) =>
        broker({ job: job(), sites: twoEqual, nowMs: NOW_MS, random }).chosenSite;
      expect(pick(0)).toBe("ALPHA");
      expect(pick(0.49)).toBe("ALPHA");
      expect(pick(0.5)).toBe("BETA");
      expect(pick(1)).toBe("BETA");
      const onlyBest = resolveBrokerageConfig({ randomTopCandidates: 1 });
      expect(
        broker({ job: job(), sites: twoEqual, nowMs: NOW_MS, random: 0.9, config: onlyBest }).chosenSite,
      ).toBe("ALPHA");
      expect(spy).not.toHaveBeenCalled();
      spy.mockRestore();
    });
  });

  it("records the sites a random number drew among, best first, each weighted by its score", () => {
    const sites = [site("ALPHA"), site("BETA", { stats: { running: 4 } }), site("GAMMA")];
    const drawn = broker({ job: job(), sites, nowMs: NOW_MS, random: 0.7 });
    const scores = new Map(drawn.candidates.map((c) => [c.site, c.score]));
    expect(drawn.draw?.candidates.map((c) => c.weight)).toEqual(
      drawn.draw?.candidates.map((c) => scores.get(c.site)),
    );
    expect(drawn.draw?.candidates.map((c) => c.site).sort()).toEqual(["ALPHA", "BETA", "GAMMA"]);
    const weights = drawn.draw!.candidates.map((c) => c.weight);
    expect(weights).toEqual([...weights].sort((a, b) => b - a));
    expect(drawn.draw?.among).toBe(3);
    expect(drawn.draw?.totalWeight).toBeCloseTo(weights[0]! + weights[1]! + weights[2]!, 15);
    expect(broker({ job: job(), sites, nowMs: NOW_MS }).draw).toBeUndefined();
    expect(broker({ job: job(), sites: [site("ALPHA")], nowMs: NOW_MS, random: 0.7 }).draw).toBeUndefined();
    const twoOfThree = resolveBrokerageConfig({ randomTopCandidates: 2 });
    expect(
      broker({ job: job(), sites, nowMs: NOW_MS, random: 0.7, config: twoOfThree }).draw?.candidates,
    ).toHaveLength(2);
  });

  describe("input validation", () => {
    it("names the bad field", () => {
      const bad = { job: { ...job(), memoryMb: -1 }, sites: [site("A")], nowMs: NOW_MS };
      expect(() => parseBrokerageInput(bad)).toThrow(/job\.memoryMb/);
      const badSite = { job: job(), sites: [{ ...site("A"), status: "sleeping" }], nowMs: NOW_MS };
      expect(() => parseBrokerageInput(badSite)).toThrow(/sites\.0\.status/);
    });

    it("accepts valid external input and applies config defaults", () => {
      const parsed = parseBrokerageInput({ job: job(), sites: [site("A")], nowMs: NOW_MS, config: {} });
      expect(parsed.config?.queueCapMin).toBe(20);
      expect(broker(parsed).chosenSite).toBe("A");
    });

    it("refuses duplicate site names", () => {
      expect(() => broker({ job: job(), sites: [site("A"), site("A")], nowMs: NOW_MS })).toThrow(
        BrokerageInputError,
      );
    });

    it("treats site names like constructor as plain names", () => {
      const decision = broker({
        job: job({ inputs: inputs(1, GB) }),
        sites: [site("constructor")],
        nowMs: NOW_MS,
      });
      expect(decision.chosenSite).toBe("constructor");
      expect(decision.filesToMove).toEqual(["f0"]);
    });
  });
});
