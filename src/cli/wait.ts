/** `panda wait`: waits for a task to end, with progress lines, and exits with a code that says how it ended. */
import type { Command } from "commander";
import type { PandaClient, TaskDetail } from "./client.js";
import { CliError, EXIT } from "./errors.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  integerArg,
} from "./options.js";
import { printAnswer } from "./output.js";
import { ProgressBar } from "./progress-bar.js";

interface WaitFlags extends ConnectionOptions {
  timeout?: number;
  interval: number;
  json?: boolean;
}

const FINAL_TASK_STATES = new Set(["done", "finished", "failed", "aborted"]);

/** Polls the task until it reaches a final state or the deadline passes (then null). */
export async function waitForTask(
  client: PandaClient,
  taskId: string,
  options: { timeoutMs: number | null; intervalMs: number; onProgress?: (task: TaskDetail) => void },
): Promise<TaskDetail | null> {
  const deadline = options.timeoutMs === null ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  for (;;) {
    const task = await client.getTask(taskId);
    options.onProgress?.(task);
    if (FINAL_TASK_STATES.has(task.state)) return task;
    if (Date.now() + options.intervalMs > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}

export function registerWaitCommand(program: Command): void {
  const command = program
    .command("wait")
    .description(
      "wait for a task to end; exit 0 when every job finished, 5 when some did not, 6 on --timeout",
    )
    .argument("<taskId>", "the task")
    .option("--timeout <seconds>", "give up after this long (exit 6)", integerArg(1))
    .option("--interval <ms>", "how often to ask the server", integerArg(50, 60_000), 1000);
  addJsonOption(addConnectionOptions(command)).action(async (taskId: string, flags: WaitFlags) => {
    let bar: ProgressBar | null = null;
    const task = await waitForTask(clientFor(flags), taskId, {
      timeoutMs: flags.timeout === undefined ? null : flags.timeout * 1000,
      intervalMs: flags.interval,
      onProgress: (t) => {
        bar ??= new ProgressBar(`task ${taskId}`, t.jobCount);
        bar.update(t.progress.endedJobs, `jobs ended, ${t.counts.failed ?? 0} failed`);
      },
    });
    (bar as ProgressBar | null)?.finish();
    if (!task) throw new CliError(EXIT.timeout, `task ${taskId} did not end within ${flags.timeout} s`);
    printAnswer(
      flags.json,
      task,
      () =>
        `task ${taskId} ${task.state}: ${task.counts.finished ?? 0}/${task.jobCount} jobs finished, ${task.counts.failed ?? 0} failed`,
    );
    if (task.state !== "done")
      throw new CliError(
        EXIT.incomplete,
        `task ${taskId} ended ${task.state}: \`panda jobs --task ${taskId}\` lists its jobs`,
      );
  });
}
