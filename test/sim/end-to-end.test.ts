import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runSimCli, SIM_EXIT } from "../../src/sim/cli.js";
import type { RunSummary } from "../../src/sim/outputs.js";
import { smallScenario } from "./small-scenario.js";

const dir = mkdtempSync(join(tmpdir(), "panda-sim-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scenarioPath = join(dir, "small.json");
writeFileSync(scenarioPath, JSON.stringify(smallScenario()));

async function run(seed: number, out: string): Promise<string> {
  const code = await runSimCli([scenarioPath, "--seed", String(seed), "--out", join(dir, out), "--quiet"]);
  expect(code).toBe(SIM_EXIT.ok);
  return readFileSync(join(dir, out, "summary.json"), "utf8");
}

describe("a small scenario end to end", () => {
  let first = "";

  it("runs every variant with its invariants intact and writes every output", async () => {
    first = await run(11, "a");
    const summary = JSON.parse(first) as RunSummary;
    expect(summary.variants.map((v) => v.variant)).toEqual(["single", "multitask"]);
    for (const v of summary.variants) {
      const j = v.jobs;
      const submitted = j.submitted.production + j.submitted.analysis;
      const accounted = (["finished", "failed", "cancelled", "closed", "live"] as const).reduce(
        (n, key) => n + j[key].production + j[key].analysis,
        0,
      );
      expect(accounted).toBe(submitted);
      expect(v.invariants.checks).toBeGreaterThan(100);
      expect(j.finished.production).toBeGreaterThan(20);
      expect(j.finished.analysis).toBeGreaterThan(10);
      // Every failure class the scenario turns on shows up, with the outage's lost heartbeats among them.
      expect(Object.keys(v.failures.byClass)).toEqual(
        expect.arrayContaining(["lostHeartbeat", "payload", "pilot"]),
      );
      expect(v.transfers.bytes).toBeGreaterThan(0);
      expect(v.cpu.utilisation).toBeGreaterThan(0.3);
      expect(v.cpu.utilisation).toBeLessThanOrEqual(1);
    }
    const multitask = summary.comparison.find((c) => c.variant === "multitask")!;
    const single = summary.comparison.find((c) => c.variant === "single")!;
    expect(multitask.analysisWaitP50Sec).toBeLessThan(single.analysisWaitP50Sec!);
    for (const file of [
      "report.html",
      "timing.json",
      "single/grid.csv",
      "single/sites.csv",
      "multitask/grid.csv",
    ]) {
      expect(existsSync(join(dir, "a", file)), file).toBe(true);
    }
    const report = readFileSync(join(dir, "a", "report.html"), "utf8");
    expect(report).toContain("<svg");
    expect(report).toContain("Strategies side by side");
    // One table and one chart put the strategies' analysis waits (p50, p90, p99) side by side.
    expect(report.match(/<th>analysis wait p99<\/th>/g)).toHaveLength(1);
    expect(report.match(/Analysis wait from submission to start, by strategy/g)).toHaveLength(1);
    // Observed failure shares sit beside the scenario's configured chances.
    expect(report).toContain("configured chance");
    expect(summary.variants[0]!.failures.configured.payload).toEqual({ minPercent: 3, maxPercent: 3 });
    expect(report).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const csv = readFileSync(join(dir, "a", "single", "grid.csv"), "utf8")
      .trim()
      .split("\n");
    expect(csv[0]).toContain("hour,defined,assigned,activated");
    expect(csv.length).toBe(1 + 3 * 2 + 1);
  });

  it("gives a byte-identical summary for the same seed and a different one for another seed", async () => {
    const again = await run(11, "b");
    expect(again).toBe(first);
    const other = await run(12, "c");
    expect(other).not.toBe(first);
  });
});
