import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadScenario, parseScenario, ScenarioError } from "../../src/sim/scenario.js";
import { bandwidthSchema, durationSchema, ratePerHourSchema, sizeSchema } from "../../src/sim/units.js";
import { smallScenario } from "./small-scenario.js";

function issuesOf(raw: unknown): { path: string; message: string }[] {
  try {
    parseScenario(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).issues;
  }
  throw new Error("the scenario was accepted");
}

const dir = mkdtempSync(join(tmpdir(), "panda-scenario-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("scenario files", () => {
  it("parse quantities with their units", () => {
    expect(durationSchema.parse("90m")).toBe(5_400_000);
    expect(durationSchema.parse(30)).toBe(30_000);
    expect(sizeSchema.parse("2GB")).toBe(2e9);
    expect(bandwidthSchema.parse("10Gbps")).toBe(1.25e9);
    expect(bandwidthSchema.parse("100MB/s")).toBe(1e8);
    expect(ratePerHourSchema.parse("2/min")).toBe(120);
  });

  it("resolve variants over the scenario's strategy, units and all", () => {
    const scenario = parseScenario(smallScenario());
    expect(scenario.variants.map((v) => v.strategy.pilots)).toEqual(["single", "multitask"]);
    expect(scenario.variants[1]!.strategy.multitask).toEqual({
      shortAnalysisWalltime: 3_600_000,
      slowdown: 1.2,
    });
    const plain = parseScenario(smallScenario({ variants: [] }));
    expect(plain.variants.map((v) => v.name)).toEqual(["single"]);
  });

  it("name the bad field in every error", () => {
    const base = smallScenario();
    const sites = base.sites as Record<string, unknown>[];
    expect(issuesOf({ ...base, sites: [{ ...sites[0], slots: -1 }, sites[1]] })).toEqual([
      expect.objectContaining({ path: "sites.0.slots" }),
    ]);
    const badRate = issuesOf({ ...base, sites: [sites[0], { ...sites[1], pilots: { rate: "fast" } }] });
    expect(badRate[0]).toEqual({
      path: "sites.1.pilots.rate",
      message: expect.stringContaining('not a rate: "fast"'),
    });
    const badDuration = issuesOf({ ...base, duration: "2 fortnights" });
    expect(badDuration[0]?.path).toBe("duration");
    expect(badDuration[0]?.message).toContain("unknown unit");
    const unknownSite = issuesOf({
      ...base,
      events: [{ type: "siteOutage", at: "1h", site: "NOWHERE", duration: "1h" }],
    });
    expect(unknownSite).toEqual([{ path: "events.0.site", message: "unknown site NOWHERE" }]);
    const { slots: _slots, ...withoutSlots } = sites[0]!;
    const typo = issuesOf({ ...base, sites: [{ ...withoutSlots, slot: 3 }, sites[1]] });
    expect(typo).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "sites.0.slots" }),
        { path: "sites.0.slot", message: "unknown field" },
      ]),
    );
    const badVariant = issuesOf({ ...base, variants: [{ name: "x", strategy: { pilots: "telepathy" } }] });
    expect(badVariant[0]?.path).toBe("variants.0.strategy.pilots");
    const badDist = issuesOf({
      ...base,
      analysis: { ...(base.analysis as object), duration: { dist: "lognormal", median: "10m" } },
    });
    expect(badDist.some((i) => i.path.startsWith("analysis.duration"))).toBe(true);
  });

  it("load YAML and JSON alike, and report a syntax error with the file", () => {
    const yamlPath = join(dir, "s.yaml");
    writeFileSync(
      yamlPath,
      `name: y
question: q
sites:
  - { name: A, slots: 2, pilots: { rate: 10/h } }
analysis: { jobsPerTask: 1, duration: 5m, arrival: { rate: 1/h } }
`,
    );
    expect(loadScenario(yamlPath).sites[0]!.pilots.rate).toBe(10);
    const broken = join(dir, "broken.yaml");
    writeFileSync(broken, "name: [unclosed\n");
    expect(() => loadScenario(broken)).toThrow(/broken\.yaml: invalid scenario/);
  });
});
