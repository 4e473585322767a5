/** `panda jobs`: lists jobs with filters, as a table or JSON. */
import { type Command, Option } from "commander";
import { JOB_STATES } from "../actors/job/schema.js";
import type { JobRow } from "./client.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  epochMsArg,
  integerArg,
} from "./options.js";
import { print, printJson, renderTable } from "./output.js";

interface JobsFlags extends ConnectionOptions {
  task?: string;
  state?: string;
  site?: string;
  user?: string;
  since?: number;
  until?: number;
  offset?: number;
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
    .option("--user <user>", "only this user's jobs")
    .option("--since <time>", "entered their current state at or after: ISO 8601 or epoch ms", epochMsArg)
    .option("--until <time>", "... and at or before", epochMsArg)
    .option("--offset <count>", "skip this many matching jobs (the next page)", integerArg(0))
    .option("--limit <count>", "at most this many jobs (server default 500)", integerArg(1, 10_000));
  addJsonOption(addConnectionOptions(command)).action(async (flags: JobsFlags) => {
    const page = await clientFor(flags).listJobsPage({
      task: flags.task,
      state: flags.state,
      site: flags.site,
      user: flags.user,
      since: flags.since,
      until: flags.until,
      offset: flags.offset,
      limit: flags.limit,
    });
    if (flags.json) return printJson(page);
    print(renderJobs(page.jobs));
    // On stderr, so a pipe of the table stays a table.
    if (typeof page.nextOffset === "number") process.stderr.write(`more: --offset ${page.nextOffset}\n`);
  });
}
