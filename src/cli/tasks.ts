/**
 * `panda tasks` and `panda retry`: the task list, one task with its progress,
 * and a task's failed jobs run again as a new task.
 */
import { type Command, Option } from "commander";
import { TASK_STATES } from "../actors/task/schema.js";
import type { TaskDetail, TaskRow } from "./client.js";
import {
  addConnectionOptions,
  addJsonOption,
  type ConnectionOptions,
  clientFor,
  integerArg,
} from "./options.js";
import { isoTime, printAnswer, renderTable } from "./output.js";

interface TasksFlags extends ConnectionOptions {
  user?: string;
  state?: string;
  limit?: number;
  json?: boolean;
}

export function renderTasks(tasks: readonly TaskRow[]): string {
  if (tasks.length === 0) return "no tasks";
  return renderTable(
    ["task", "state", "user", "type", "jobs", "finished", "failed", "live"],
    tasks.map((t) => [
      t.taskId,
      t.state,
      t.user,
      t.type,
      t.jobCount,
      t.counts.finished,
      t.counts.failed,
      t.counts.live,
    ]),
  );
}

export function renderTaskDetail(task: TaskDetail): string {
  const counts = Object.entries(task.counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
  const created = (task.timestamps as Record<string, number> | undefined)?.defined;
  return [
    `task ${task.taskId}: ${task.state} (${task.type}, user ${task.user}, created ${isoTime(created)})`,
    `progress: ${task.progress.endedJobs}/${task.jobCount} jobs ended (${task.progress.percentEnded.toFixed(0)}%)`,
    `counts: ${counts}`,
  ].join("\n");
}

export function registerTasksCommands(program: Command): void {
  const tasks = program
    .command("tasks")
    .description("list tasks, newest first; `panda tasks TASK` shows one with its progress")
    .argument("[taskId]", "show this task")
    .option("--user <user>", "only this user's tasks")
    .addOption(new Option("--state <state>", "only tasks in this state").choices(TASK_STATES))
    .option("--limit <count>", "at most this many tasks (server default 500)", integerArg(1, 10_000));
  addJsonOption(addConnectionOptions(tasks)).action(async (taskId: string | undefined, flags: TasksFlags) => {
    const client = clientFor(flags);
    if (taskId) {
      const task = await client.getTask(taskId);
      printAnswer(flags.json, task, () => renderTaskDetail(task));
      return;
    }
    const list = await client.listTasks({ user: flags.user, state: flags.state, limit: flags.limit });
    printAnswer(flags.json, { tasks: list }, () => renderTasks(list));
  });

  const retry = program
    .command("retry")
    .description("run a task's failed jobs again, as a new task; prints its id")
    .argument("<taskId>", "the task whose failed jobs to retry");
  addJsonOption(addConnectionOptions(retry)).action(
    async (taskId: string, flags: ConnectionOptions & { json?: boolean }) => {
      const answer = await clientFor(flags).retryTask(taskId);
      printAnswer(flags.json, answer, () => answer.taskId);
    },
  );
}
