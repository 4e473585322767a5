/** `panda sim` and `panda bench`: verbs that run another engine and end with its exit code. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { CliError, EXIT, usageError } from "./errors.js";
import { runSimInSizedHeap } from "./sim-heap.js";

/**
 * `panda sim`: the simulation engine parses its own arguments (`panda sim
 * --help`) and decides its exit code; loaded only when asked for, so the
 * other verbs do not pay for it.
 */
export function registerSimCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("sim")
    .description("run a simulation scenario on a virtual clock (`panda sim --help` for its options)")
    .usage("SCENARIO [options]")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument("[sim-options...]")
    .action(async (argv: string[]) => {
      const asksForHelp = argv.includes("--help") || argv.includes("-h");
      const childCode = asksForHelp ? null : await runSimInSizedHeap(argv);
      if (childCode !== null) {
        setExitCode(childCode);
        return;
      }
      const { runSimCli } = await import("../sim/cli.js");
      setExitCode(await runSimCli(argv));
    });
}

const BENCHMARKS = ["runtime", "dispatch"] as const;

/**
 * `panda bench NAME`: the benchmarks live in the source checkout (`bench/`,
 * not in the published package) and need a Redis; this runs one there with
 * tsx, passing PANDA_BENCH_* through, and exits with its code.
 */
export function registerBenchCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("bench")
    .description(
      `run a benchmark from the source checkout: ${BENCHMARKS.join(" | ")} (PANDA_BENCH_* tune it)`,
    )
    .argument("<name>", BENCHMARKS.join(" or "))
    .action(async (name: string) => {
      if (!(BENCHMARKS as readonly string[]).includes(name))
        throw usageError(`unknown benchmark '${name}': choose ${BENCHMARKS.join(" or ")}`);
      const script = fileURLToPath(new URL(`../../bench/${name}.bench.ts`, import.meta.url));
      if (!existsSync(script))
        throw new CliError(
          EXIT.failed,
          `${script} is not here: benchmarks run from a source checkout (git clone)`,
        );
      const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), script], {
        stdio: "inherit",
      });
      const code = await new Promise<number>((done) => child.once("exit", (c) => done(c ?? EXIT.failed)));
      setExitCode(code);
    });
}
