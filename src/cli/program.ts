/** The `panda` command: every verb registered on one commander program, and the one entry point `bin/panda.js` calls. */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerDatasetCommands } from "./datasets.js";
import { CliError, EXIT } from "./errors.js";
import { registerFactoryCommand } from "./factory.js";
import { registerInspectCommand } from "./inspect.js";
import { registerJobsCommand } from "./jobs.js";
import { registerKillCommand } from "./kill.js";
import { registerPilotCommand } from "./pilot.js";
import { registerReassignCommand } from "./reassign.js";
import { registerSandboxCommand } from "./sandbox.js";
import { registerServerCommand } from "./server.js";
import { registerBenchCommand, registerSimCommand } from "./sim.js";
import { registerSitesCommand } from "./sites.js";
import { registerSubmitCommand } from "./submit.js";
import { registerTasksCommands } from "./tasks.js";
import { registerTokenCommands } from "./token.js";
import { registerUpCommand } from "./up.js";
import { registerWaitCommand } from "./wait.js";
import { registerWhyCommand } from "./why.js";

/** package.json sits two levels up from both src/cli and dist/cli. */
function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** `setExitCode`: verbs that run another program (sim, bench) end with its exit code. */
export function createProgram(setExitCode: (code: number) => void = () => {}): Command {
  const program = new Command("panda")
    .description("PanDA-style workload management on durable actors")
    .version(packageVersion())
    // Usage errors become exit code 2 in runCli, not commander's process.exit(1).
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`panda: ${text}`) })
    .showHelpAfterError("(add --help to see the options)")
    // Options after a subcommand belong to it: `panda pilot` and `panda submit -- CMD` pass theirs through.
    .enablePositionalOptions();
  registerUpCommand(program);
  registerServerCommand(program);
  registerPilotCommand(program);
  registerFactoryCommand(program);
  registerSubmitCommand(program);
  registerJobsCommand(program);
  registerTasksCommands(program);
  registerInspectCommand(program);
  registerKillCommand(program);
  registerReassignCommand(program);
  registerSitesCommand(program);
  registerDatasetCommands(program);
  registerSimCommand(program, setExitCode);
  registerBenchCommand(program, setExitCode);
  registerWhyCommand(program);
  registerWaitCommand(program);
  registerTokenCommands(program);
  registerSandboxCommand(program);
  return program;
}

/** Runs one `panda` command line (without `node` and the script) and answers its exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  try {
    await createProgram((code) => {
      exitCode = code;
    }).parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (err) {
    // Commander has printed its message (or the help / version it was asked for).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof CliError) {
      process.stderr.write(`panda: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`panda: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.failed;
  }
}
