/** `panda pilot`: the pilot agent run as a `panda` verb, in this process. */
import type { Command } from "commander";
import { runPilotCli } from "../pilot/index.js";

/**
 * Runs the pilot agent in this process and exits with its code. A pilot that
 * `panda up` started has an IPC channel to it; the channel closing means `up`
 * died without stopping it (SIGKILL), so the pilot stops its payloads and
 * exits (as on SIGINT) instead of reconnecting to a gone server forever.
 */
export async function runPilotProcess(argv: readonly string[]): Promise<never> {
  if (process.channel) {
    process.channel.unref();
    process.once("disconnect", () => process.kill(process.pid, "SIGINT"));
  }
  process.exit(await runPilotCli(argv));
}

export function registerPilotCommand(program: Command): void {
  program
    .command("pilot")
    .description("run a pilot agent at a site (`panda pilot --help` for its options)")
    .usage("--server URL --site NAME [options]")
    // The pilot parses its own flags (including --help): everything after `pilot` goes to it untouched.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument("[pilot-options...]")
    .action(async (argv: string[]) => {
      await runPilotProcess(argv);
    });
}
