/** `panda submit`: a task submission built from flags and sent; prints the task's id. */
import { type Command, Option } from "commander";
import { type TaskSubmission, taskSubmissionSchema } from "../workload/submit.js";
import { usageError } from "./errors.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  collect,
  integerArg,
} from "./options.js";
import { print, printJson } from "./output.js";
import { shipSandbox } from "./sandbox.js";

export interface SubmitFlags extends ConnectionOptions {
  name?: string;
  type?: "production" | "analysis";
  priority?: number;
  site?: string;
  test?: boolean;
  jobs?: number;
  input?: string;
  filesPerJob?: number;
  output?: string;
  outputFile?: string[];
  walltime?: number;
  memory?: number;
  cores?: number;
  sandbox?: string;
  exclude?: string[];
  build?: string;
  json?: boolean;
}

/** The flag behind each field of a submission, so the server's schema errors point at what to change. */
const FLAG_FOR_FIELD: Record<string, string> = {
  name: "--name",
  type: "--type",
  priority: "--priority",
  site: "--site",
  jobs: "--jobs",
  "input.dataset": "--input",
  "input.filesPerJob": "--files-per-job",
  outputDataset: "--output",
  "payload.command": "the command after --",
  "payload.outputs": "--output-file",
  "resources.walltimeSec": "--walltime",
  "resources.memoryMb": "--memory",
  "resources.cores": "--cores",
  build: "--build",
  sandbox: "--sandbox",
};

function flagForPath(path: readonly PropertyKey[]): string {
  for (let length = path.length; length > 0; length--) {
    const flag = FLAG_FOR_FIELD[path.slice(0, length).map(String).join(".")];
    if (flag) return flag;
  }
  return path.length > 0 ? path.map(String).join(".") : "the submission";
}

/**
 * The task submission `panda submit` sends, checked against the server's own
 * schema first so a bad value fails here (exit 2) naming its flag.
 */
export function buildSubmission(flags: SubmitFlags, command: readonly string[]): TaskSubmission {
  if (command.length === 0) {
    throw usageError("no payload command: give it after --, e.g. `panda submit --jobs 3 -- sh -c 'echo hi'`");
  }
  if (flags.build !== undefined && flags.sandbox === undefined) {
    throw usageError("--build needs --sandbox DIR (the code the build command builds)");
  }
  if (flags.exclude !== undefined && flags.sandbox === undefined) {
    throw usageError("--exclude needs --sandbox DIR (the directory whose files it leaves out)");
  }
  if (flags.filesPerJob !== undefined && flags.input === undefined) {
    throw usageError("--files-per-job needs --input DATASET (the dataset whose files are split into jobs)");
  }
  const resources = {
    ...(flags.walltime === undefined ? {} : { walltimeSec: flags.walltime }),
    ...(flags.memory === undefined ? {} : { memoryMb: flags.memory }),
    ...(flags.cores === undefined ? {} : { cores: flags.cores }),
  };
  const submission: TaskSubmission = {
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.type === undefined ? {} : { type: flags.type }),
    ...(flags.priority === undefined ? {} : { priority: flags.priority }),
    ...(flags.site === undefined ? {} : { site: flags.site }),
    ...(flags.test ? { test: true } : {}),
    resources,
    payload: { command: [...command], ...(flags.outputFile ? { outputs: flags.outputFile } : {}) },
    ...(flags.input === undefined
      ? {}
      : { input: { dataset: flags.input, filesPerJob: flags.filesPerJob ?? 1 } }),
    ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
    ...(flags.output === undefined ? {} : { outputDataset: flags.output }),
    ...(flags.build === undefined ? {} : { build: { command: ["sh", "-c", flags.build] } }),
  };
  const checked = taskSubmissionSchema.safeParse(submission);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${flagForPath(issue.path)}: ${issue.message}`);
    throw usageError(problems.join("; "));
  }
  return submission;
}

export function registerSubmitCommand(program: Command): void {
  const command = program
    .command("submit")
    .description("submit a task; prints its id (everything after -- is the payload's argv)")
    .usage("[options] -- COMMAND [ARGS...]")
    .option("--name <name>", "a name for the task")
    .addOption(new Option("--type <type>", "the job type").choices(["production", "analysis"]))
    .option(
      "--priority <priority>",
      "the task's priority (higher runs first)",
      integerArg(-1_000_000, 1_000_000),
    )
    .option("--site <site>", "run only at this site")
    .option("--test", "test jobs: the only work a site in status test takes")
    .addOption(
      new Option("--jobs <count>", "the number of jobs, for a task without input files")
        .argParser(integerArg(1, 100_000))
        .conflicts("input"),
    )
    .option("--input <dataset>", "an input dataset: its files are split into jobs")
    .option("--files-per-job <count>", "input files per job (with --input; default 1)", integerArg(1, 10_000))
    .option("--output <dataset>", "the output dataset (default: <taskId>.out)")
    .option(
      "--output-file <name>",
      "a file the payload writes, registered as an output; repeatable; {jobId} is replaced per job",
      collect,
    )
    .option("--walltime <seconds>", "each job's walltime in seconds", integerArg(1))
    .option("--memory <mb>", "each job's memory in MB", integerArg(1))
    .option("--cores <count>", "each job's cores", integerArg(1))
    .option(
      "--sandbox <dir>",
      "your code: DIR is packed, uploaded once (by its sha256) and unpacked in each job's directory",
    )
    .option(
      "--build <command>",
      "a shell command run once per site in the unpacked sandbox; the directory it leaves is what the site's jobs run in",
    )
    .option(
      "--exclude <glob>",
      "leave matching paths out of the sandbox (*.o, .git, build/**); repeatable",
      collect,
    )
    .argument("[command...]", "the payload: a command and its arguments, after --")
    .passThroughOptions();
  addJsonOption(addConnectionOptions(command)).action(async (payload: string[], flags: SubmitFlags) => {
    const submission = buildSubmission(flags, payload);
    const client = clientFor(flags);
    if (flags.sandbox !== undefined) {
      const shipped = await shipSandbox(client, flags.sandbox, flags.exclude ?? []);
      submission.sandbox = { sha256: shipped.sha256, sizeBytes: shipped.sizeBytes };
      process.stderr.write(
        `sandbox ${shipped.sha256.slice(0, 16)} (${shipped.sizeBytes} bytes) ${shipped.uploaded ? "uploaded" : "already on the server"}\n`,
      );
    }
    const answer = await client.submitTask(submission);
    if (flags.json) printJson(answer);
    else {
      print(answer.taskId);
      // On stderr, so scripts reading the task id from stdout are undisturbed.
      if (answer.queuedAhead)
        process.stderr.write(`accepted: ${answer.queuedAhead} jobs of earlier submissions queued ahead\n`);
    }
  });
}
