/**
 * The query planners behind the API's listings of tasks, jobs, datasets and
 * subscriptions: which indexes to read, what prunes before a read, when a
 * scan may stop. They answer actors (state and context); the API shapes them.
 * docs/api.md ("What the reads cost") says what each costs.
 */
import type { DatasetContext } from "../actors/dataset/schema.js";
import { JOB_STATES, type JobContext } from "../actors/job/schema.js";
import { jobStateOf } from "../actors/job/state.js";
import { jobIdOf } from "../actors/shared/names.js";
import { JOB_OUTCOMES } from "../actors/shared/schemas.js";
import type { SubscriptionContext } from "../actors/subscription/schema.js";
import type { TaskContext } from "../actors/task/schema.js";
import { catalogQueues } from "../store/index-names.js";
import { queueNames } from "../store/queue-index.js";
import { readContext, type WorkloadContext } from "./context.js";
import { liveJobsBySite } from "./sites.js";
import { literalPrefix, wildcardRegExp } from "./wildcard.js";

/** An actor a query found: its top-level state and its context. */
export interface Found<C> {
  state: string;
  context: C;
}

export interface TaskQuery {
  user?: string | undefined;
  state?: string | undefined;
  offset: number;
  limit: number;
}

export interface JobQuery {
  task?: string | undefined;
  state?: string | undefined;
  site?: string | undefined;
  user?: string | undefined;
  /** The job entered its current state at or after this time (epoch ms) ... */
  since?: number | undefined;
  /** ... and at or before this time. */
  until?: number | undefined;
  offset: number;
  limit: number;
}

export interface DatasetQuery {
  /** Shell-style wildcards: `*` any run of characters, `?` one character. */
  pattern: string;
  limit: number;
}

export interface SubscriptionQuery {
  dataset?: string | undefined;
  site?: string | undefined;
  state?: string | undefined;
  purpose?: string | undefined;
  limit: number;
}

type Ctx = Pick<WorkloadContext, "runtime" | "index">;

/** Task ids, newest first, from the task list index. */
export async function taskIds(ctx: Pick<WorkloadContext, "index">): Promise<string[]> {
  return (await ctx.index.range(queueNames.tasks(), 0, 1_000_000)).map((e) => e.member).reverse();
}

/** Newest first; every task is read (one store read each) until the page is full. */
export async function queryTasks(
  ctx: Ctx,
  query: TaskQuery,
): Promise<{ tasks: Found<TaskContext>[]; nextOffset: number | null }> {
  const found: Found<TaskContext>[] = [];
  let skipped = 0;
  for (const ids of chunks(await taskIds(ctx), 64)) {
    const tasks = await Promise.all(ids.map((id) => readContext(ctx, "task", id)));
    for (const task of tasks) {
      if (!task) continue;
      if (query.user && task.context.user !== query.user) continue;
      if (query.state && task.state !== query.state) continue;
      if (skipped++ < query.offset) continue;
      found.push({ state: task.state, context: task.context });
      if (found.length >= query.limit) return { tasks: found, nextOffset: query.offset + found.length };
    }
  }
  return { tasks: found, nextOffset: null };
}

/**
 * Every attempt of every job of the selected tasks, newest task first. The
 * task (its user, its lifetime) prunes before any of its jobs is read; then
 * each attempt is one store read. For a live state that implies a site, the
 * live-job counters say how many jobs can match, so the scan stops once it
 * found them all instead of reading every older task.
 */
export async function queryJobs(
  ctx: Ctx,
  query: JobQuery,
): Promise<{ jobs: Found<JobContext>[]; nextOffset: number | null }> {
  const ids = query.task ? [query.task] : await taskIds(ctx);
  const atMost = await liveJobsAtMost(ctx, query);
  const jobs: Found<JobContext>[] = [];
  let matched = 0;
  if (atMost === 0) return { jobs, nextOffset: null };
  for (const taskChunk of chunks(ids, 32)) {
    const tasks = await Promise.all(taskChunk.map((id) => readContext(ctx, "task", id)));
    for (const task of tasks) {
      if (!task || !taskMayHold(task.state, task.context, query)) continue;
      const jobIds = task.context.attempts.flatMap((latest, index) =>
        Array.from({ length: latest }, (_, a) => jobIdOf(task.context.taskId, index, a + 1)),
      );
      for (const chunk of chunks(jobIds, 256)) {
        const views = await Promise.all(chunk.map((id) => readContext(ctx, "job", id)));
        for (const view of views) {
          if (!view || !jobMatches(view.state, view.context, query)) continue;
          if (++matched <= query.offset) continue;
          jobs.push({ state: view.state, context: view.context });
          if (jobs.length >= query.limit) return { jobs, nextOffset: query.offset + jobs.length };
          if (atMost !== null && matched >= atMost) return { jobs, nextOffset: null };
        }
      }
    }
  }
  return { jobs, nextOffset: null };
}

/** Names from the catalog index, matched against the pattern; then each match's state is read. */
export async function queryDatasets(ctx: Ctx, query: DatasetQuery): Promise<Found<DatasetContext>[]> {
  const regexp = wildcardRegExp(query.pattern);
  const prefix = literalPrefix(query.pattern);
  const names = (await ctx.index.range(catalogQueues.datasets, 0, 10_000_000))
    .map((e) => e.member)
    .filter((name) => name.startsWith(prefix) && regexp.test(name))
    .slice(0, query.limit);
  const views = await Promise.all(names.map((name) => readContext(ctx, "dataset", name)));
  return views.flatMap((d) => (d ? [{ state: d.state, context: d.context }] : []));
}

/** Newest first: ids from the catalog index, pruned by site and dataset before each is read. */
export async function querySubscriptions(
  ctx: Ctx,
  query: SubscriptionQuery,
): Promise<Found<SubscriptionContext>[]> {
  const ids = (await ctx.index.range(catalogQueues.subscriptions, 0, 10_000_000))
    .map((e) => e.member)
    .reverse()
    .filter(
      (id) =>
        (!query.site || id.endsWith(`@${query.site}`)) && (!query.dataset || id.startsWith(query.dataset)),
    );
  const found: Found<SubscriptionContext>[] = [];
  for (const chunk of chunks(ids, 128)) {
    const subs = await Promise.all(chunk.map((id) => readContext(ctx, "subscription", id)));
    for (const sub of subs) {
      if (!sub) continue;
      if (query.dataset && sub.context.dataset !== query.dataset) continue;
      if (query.state && sub.state !== query.state) continue;
      if (query.purpose && sub.context.purpose !== query.purpose) continue;
      found.push({ state: sub.state, context: sub.context });
      if (found.length >= query.limit) return found;
    }
  }
  return found;
}

/** How many jobs the live-job counters hold in the asked live state (at the asked site); null when they cannot say. */
async function liveJobsAtMost(ctx: Ctx, query: JobQuery): Promise<number | null> {
  if (!query.state || !SITED_LIVE_STATES.has(query.state)) return null;
  const state = query.state;
  const live = await liveJobsBySite(ctx);
  const counts = query.site ? [live.get(query.site) ?? {}] : [...live.values()];
  return counts.reduce((sum, jobs) => sum + (jobs[state as keyof typeof jobs] ?? 0), 0);
}

/** Live states a job is in only once brokerage gave it a site: the counters count them per site. */
const UNSITED_STATES: readonly string[] = ["pending", "defined", "waiting", ...JOB_OUTCOMES];
const SITED_LIVE_STATES = new Set<string>(JOB_STATES.filter((state) => !UNSITED_STATES.includes(state)));

const FINAL_TASK_STATES = new Set(["done", "finished", "failed", "aborted"]);

/** False when no job of the task can match: another user's, created after `until`, ended before `since`. */
function taskMayHold(state: string, task: TaskContext, query: JobQuery): boolean {
  if (query.user && task.user !== query.user) return false;
  const created = task.timestamps.defined;
  if (query.until !== undefined && created !== undefined && created > query.until) return false;
  const endedAt = task.timestamps[state as keyof TaskContext["timestamps"]];
  if (
    query.since !== undefined &&
    FINAL_TASK_STATES.has(state) &&
    endedAt !== undefined &&
    endedAt < query.since
  )
    return false;
  return true;
}

/** The job's top-level state (`defined`, not `defined.brokering`): what users filter by. */
export function topStateOf(state: string): string {
  return jobStateOf(state);
}

function jobMatches(machineState: string, job: JobContext, query: JobQuery): boolean {
  const state = topStateOf(machineState);
  if (query.state && state !== query.state) return false;
  if (query.site && job.site !== query.site) return false;
  if (query.user && job.user !== query.user) return false;
  if (query.since === undefined && query.until === undefined) return true;
  const enteredMs = job.timestamps[state as keyof typeof job.timestamps];
  if (enteredMs === undefined) return false;
  return (
    (query.since === undefined || enteredMs >= query.since) &&
    (query.until === undefined || enteredMs <= query.until)
  );
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
