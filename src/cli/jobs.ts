import { type Command, Option } from "commander";
import { JOB_STATES } from "../actors/job/schema.js";
import type { JobRow } from "./client.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  integerArg,
} from "./options.js";
import { print, printJson, renderTable } from "./output.js";

interface JobsFlags extends ConnectionOptions {
  task?: string;
  state?: string;
  site?: string;
  limit?: number;
  json?: boolean;
}

export function renderJobs(jobs: readonly JobRow[]): string {
  if (jobs.length === 0) return "no jobs";
  return renderTable(
    ["job", "state", "site", "attempt", "type", "error"],
    jobs.map((job) => [
      job.jobId,
      job.state,
      job.site,
      job.attempt,
      job.type,
      job.error ? `${job.error.class}: ${job.error.message}` : null,
    ]),
  );
}

export function registerJobsCommand(program: Command): void {
  const command = program
    .command("jobs")
    .description("list jobs, every attempt, newest task first")
    .option("--task <taskId>", "only this task's jobs")
    .addOption(new Option("--state <state>", "only jobs in this state").choices(JOB_STATES))
    .option("--site <site>", "only jobs at this site")
    .option("--limit <count>", "at most this many jobs (server default 500)", integerArg(1, 10_000));
  addJsonOption(addConnectionOptions(command)).action(async (flags: JobsFlags) => {
    const jobs = await clientFor(flags).listJobs({
      task: flags.task,
      state: flags.state,
      site: flags.site,
      limit: flags.limit,
    });
    if (flags.json) printJson({ jobs });
    else print(renderJobs(jobs));
  });
}
