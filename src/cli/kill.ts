/** `panda kill`: kills a job or a task through the API. */
import { Argument, type Command } from "commander";
import { addConnectionOptions, addJsonOption, type ConnectionOptions, clientFor } from "./options.js";
import { printAnswer } from "./output.js";

interface KillFlags extends ConnectionOptions {
  reason?: string;
  json?: boolean;
}

export function registerKillCommand(program: Command): void {
  const command = program
    .command("kill")
    .description("kill a job or a task (users: their own; operators: any)")
    .addArgument(new Argument("<kind>", "job or task").choices(["job", "task"]))
    .argument("<id>", "the job or task id")
    .option("--reason <text>", "recorded with the kill");
  addJsonOption(addConnectionOptions(command)).action(
    async (kind: "job" | "task", id: string, flags: KillFlags) => {
      const answer = await clientFor(flags).kill(kind, id, flags.reason);
      printAnswer(flags.json, answer, () => `${kind} ${id}: kill sent`);
    },
  );
}
