/**
 * `panda sim`'s command line: parses the arguments, runs the scenario's
 * variants and writes their outputs, and answers an exit code rather than exiting.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runVariant, type VariantResult } from "./harness.js";
import { InvariantViolationError } from "./invariants.js";
import { runSummary, writeOutputs } from "./outputs.js";
import { ProgressBar } from "./progress.js";
import { loadScenario, ScenarioError } from "./scenario.js";
import { durationSchema, formatDurationMs } from "./units.js";

export const SIM_USAGE = `usage: panda sim SCENARIO [--seed N] [--out DIR] [--until DURATION] [--variant NAME] [--quiet]

Runs a simulation scenario (YAML or JSON) over the real actors, brokerage and
dispatcher, with simulated pilots, payloads and transfers on a virtual clock.

  --seed N           seed of every random draw (default: the scenario's)
  --out DIR          where summary.json, CSV files and report.html go
                     (default: sim-out/<scenario>-seed<N>)
  --until DURATION   simulated time to run, e.g. 6h, 2d (default: the scenario's)
  --variant NAME     run only this variant of the scenario (repeatable)
  --quiet            no progress bar

Exit status: 0 done, 1 bad usage or scenario, 2 an invariant was violated, 3 the run failed.`;

/** Exit codes of `panda sim`. */
export const SIM_EXIT = { ok: 0, usage: 1, invariant: 2, failed: 3 } as const;

/** `panda sim`: argv is what follows `sim`. Resolves to the process exit code. */
export async function runSimCli(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${SIM_USAGE}\n`);
    return SIM_EXIT.usage;
  }
  if (args.values.help) {
    process.stdout.write(`${SIM_USAGE}\n`);
    return SIM_EXIT.ok;
  }
  const path = args.positionals[0];
  if (!path || args.positionals.length > 1) {
    process.stderr.write(`${SIM_USAGE}\n`);
    return SIM_EXIT.usage;
  }
  let scenario: ReturnType<typeof loadScenario>;
  let seed: number;
  let durationMs: number;
  try {
    scenario = loadScenario(path);
    seed = args.values.seed === undefined ? scenario.seed : parseSeed(args.values.seed);
    durationMs = args.values.until === undefined ? scenario.duration : parseDuration(args.values.until);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return SIM_EXIT.usage;
  }
  const wanted = args.values.variant ?? [];
  const unknown = wanted.filter((name) => !scenario.variants.some((v) => v.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown variant ${unknown.join(", ")}; the scenario has ${scenario.variants.map((v) => v.name).join(", ")}\n`,
    );
    return SIM_EXIT.usage;
  }
  const variants =
    wanted.length > 0 ? scenario.variants.filter((v) => wanted.includes(v.name)) : scenario.variants;
  const outDir = args.values.out ?? join("sim-out", `${scenario.name}-seed${seed}`);
  const progress = args.values.quiet ? null : new ProgressBar();
  const results: VariantResult[] = [];
  try {
    for (const variant of variants) {
      const result = await runVariant({
        scenario,
        variant,
        seed,
        durationMs,
        ...(progress ? { onProgress: (p) => progress.update(p) } : {}),
      });
      progress?.done();
      results.push(result);
    }
  } catch (err) {
    progress?.done();
    if (err instanceof InvariantViolationError) {
      process.stderr.write(`${err.message}\n`);
      return SIM_EXIT.invariant;
    }
    process.stderr.write(`simulation failed: ${(err as Error).stack ?? String(err)}\n`);
    return SIM_EXIT.failed;
  }
  const summary = runSummary(scenario, seed, durationMs, results);
  writeOutputs(outDir, summary, results);
  for (const result of results) {
    const s = result.summary;
    const t = result.timing;
    const perSec = Math.round((t.jobsEnded * 1000) / Math.max(1, t.wallMs));
    const analysis = s.waitTimes.analysis;
    process.stdout.write(
      `${s.variant}: ${Math.round(s.throughput.finishedJobsPerDay).toLocaleString("en-US")} jobs/day, ` +
        `CPU ${(s.cpu.utilisation * 100).toFixed(1)}%, failed attempts ${s.failures.failedPercent.toFixed(2)}%` +
        (analysis
          ? `, analysis wait p50 ${formatDurationMs(analysis.p50Sec * 1000)} p99 ${formatDurationMs(analysis.p99Sec * 1000)}`
          : "") +
        ` | wall ${formatDurationMs(t.wallMs)} for ${formatDurationMs(t.simulatedMs)} simulated, ${perSec.toLocaleString("en-US")} jobs/wall-s\n`,
    );
  }
  process.stdout.write(`outputs in ${outDir} (summary.json, report.html, per-variant CSV)\n`);
  return SIM_EXIT.ok;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      out: { type: "string" },
      until: { type: "string" },
      variant: { type: "string", multiple: true },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

function parseSeed(text: string): number {
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new ScenarioError("--seed", [
      { path: "--seed", message: `not a seed: ${text} (an integer 0..4294967295)` },
    ]);
  return seed;
}

function parseDuration(text: string): number {
  const parsed = durationSchema.safeParse(text);
  if (!parsed.success || parsed.data <= 0)
    throw new ScenarioError("--until", [
      {
        path: "--until",
        message: parsed.success ? "must be positive" : (parsed.error.issues[0]?.message ?? "bad duration"),
      },
    ]);
  return parsed.data;
}
