/**
 * What a simulation run leaves in its output directory (`summary.json`, CSV
 * samples per variant, `report.html`, `timing.json`), and the row per variant a
 * strategy comparison reads.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { toCsv } from "./csv.js";
import type { VariantResult } from "./harness.js";
import { renderReport } from "./report-html.js";
import type { ResolvedScenario } from "./scenario.js";
import { round } from "./stats.js";
import type { VariantSummary } from "./summary.js";

/** One row per variant with the figures a strategy comparison needs. */
export interface ComparisonRow {
  variant: string;
  pilots: string;
  analysisWaitP50Sec: number | null;
  analysisWaitP90Sec: number | null;
  analysisWaitP99Sec: number | null;
  /** Submitted analysis jobs that started by the end: waits describe only those. */
  analysisStartedPercent: number;
  productionWaitP50Sec: number | null;
  productionJobsPerDay: number;
  analysisJobsPerDay: number;
  cpuUtilisation: number;
  failedPercent: number;
}

/** Everything `summary.json` holds: a pure function of the scenario and the seed. */
export interface RunSummary {
  scenario: string;
  question: string;
  seed: number;
  simulatedHours: number;
  comparison: ComparisonRow[];
  variants: VariantSummary[];
}

export function runSummary(
  scenario: ResolvedScenario,
  seed: number,
  durationMs: number,
  results: VariantResult[],
): RunSummary {
  return {
    scenario: scenario.name,
    question: scenario.question,
    seed,
    simulatedHours: durationMs / 3_600_000,
    comparison: results.map(({ summary: s }) => ({
      variant: s.variant,
      pilots: s.strategy.pilots,
      analysisWaitP50Sec: s.waitTimes.analysis?.p50Sec ?? null,
      analysisWaitP90Sec: s.waitTimes.analysis?.p90Sec ?? null,
      analysisWaitP99Sec: s.waitTimes.analysis?.p99Sec ?? null,
      analysisStartedPercent: round(
        (100 * (s.waitTimes.analysis?.count ?? 0)) / Math.max(1, s.jobs.submitted.analysis),
        2,
      ),
      productionWaitP50Sec: s.waitTimes.production?.p50Sec ?? null,
      productionJobsPerDay: s.throughput.productionPerDay,
      analysisJobsPerDay: s.throughput.analysisPerDay,
      cpuUtilisation: s.cpu.utilisation,
      failedPercent: s.failures.failedPercent,
    })),
    variants: results.map((r) => r.summary),
  };
}

/**
 * Writes a run's outputs: `summary.json`, per variant `<variant>/grid.csv`
 * and `<variant>/sites.csv` (every sample), `report.html`, and `timing.json`
 * (wall-clock figures, which differ between runs and so live apart from the
 * summary). Returns the paths written.
 */
export function writeOutputs(outDir: string, summary: RunSummary, results: VariantResult[]): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const write = (path: string, text: string) => {
    writeFileSync(path, text);
    written.push(path);
  };
  write(join(outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  for (const result of results) {
    const dir = join(outDir, result.summary.variant);
    mkdirSync(dir, { recursive: true });
    write(join(dir, "grid.csv"), toCsv(result.sampler.grid));
    write(join(dir, "sites.csv"), toCsv(result.sampler.sites));
  }
  write(join(outDir, "report.html"), renderReport(summary, results));
  const timing = results.map((r) => ({
    variant: r.summary.variant,
    ...r.timing,
    wallMs: Math.round(r.timing.wallMs),
    simulatedJobsPerWallSecond: Math.round((r.timing.jobsEnded * 1000) / Math.max(1, r.timing.wallMs)),
    wallMsPerSimulatedDay: Math.round((r.timing.wallMs * 86_400_000) / r.timing.simulatedMs),
    // What a run's speed depends on besides the code: the heap it had (`panda sim` sizes it, src/cli/sim-heap.ts).
    heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 1_048_576),
    nodeHeapFlags: process.execArgv.filter((flag) => /^--max[-_](semi|old)[-_]space[-_]size/.test(flag)),
  }));
  write(join(outDir, "timing.json"), `${JSON.stringify(timing, null, 2)}\n`);
  return written;
}
