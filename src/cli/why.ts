/** `panda why job ID`: prints the server's explanation of where a job is and why. */
import { Argument, type Command } from "commander";
import { addConnectionOptions, addJsonOption, type ConnectionOptions, clientFor } from "./options.js";
import { printAnswer } from "./output.js";

export function registerWhyCommand(program: Command): void {
  const command = program
    .command("why")
    .description(
      "explain where a job is and why: brokerage, what it waits for, why it failed, what happens next",
    )
    .addArgument(new Argument("<kind>", "what to explain").choices(["job"]))
    .argument("<id>", "the job id");
  addJsonOption(addConnectionOptions(command)).action(
    async (_kind: string, id: string, flags: ConnectionOptions & { json?: boolean }) => {
      const answer = await clientFor(flags).why(id);
      printAnswer(flags.json, answer, () => answer.summary.join("\n"));
    },
  );
}
