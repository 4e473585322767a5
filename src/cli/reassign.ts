/** `panda reassign`: closes a job (or a task's jobs) not running yet and brokers a new attempt. */
import { Argument, type Command } from "commander";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  checkedName,
  clientFor,
} from "./options.js";
import { printAnswer } from "./output.js";

interface ReassignFlags extends ConnectionOptions {
  site?: string;
  reason?: string;
  json?: boolean;
}

export function registerReassignCommand(program: Command): void {
  const command = program
    .command("reassign")
    .description(
      "close a job (or every job of a task) that is not running yet and broker a new attempt (operators)",
    )
    .addArgument(new Argument("<kind>", "job or task").choices(["job", "task"]))
    .argument("<id>", "the job or task id")
    .option(
      "--site <site>",
      "run the new attempt at this site (default: brokerage chooses, not the site left)",
    )
    .option("--reason <text>", "recorded in the job's history");
  addJsonOption(addConnectionOptions(command)).action(
    async (kind: "job" | "task", id: string, flags: ReassignFlags) => {
      const change = {
        ...(flags.site !== undefined ? { site: checkedName("--site", flags.site) } : {}),
        ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
      };
      const answer = await clientFor(flags).reassign(kind, checkedName(`<id>`, id), change);
      printAnswer(
        flags.json,
        answer,
        () =>
          [
            ...answer.reassigned.map((r) => `${r.jobId}: reassigned, next attempt ${r.nextJobId}`),
            ...answer.skipped.map((s) => `${s.jobId}: left alone (${s.state})`),
          ].join("\n") || `${kind} ${id}: no live job to reassign`,
      );
    },
  );
}
