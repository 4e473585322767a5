/**
 * Reassignment: an attempt that waits where it will not run is closed and
 * the next attempt brokered (the job machine's `reassign`; see
 * docs/workload.md). Operators ask for it by job or task; a site that goes
 * offline asks for it for every job in its queues.
 */
import type { Lane } from "../actors/job/projections.js";
import type { JobEvent } from "../actors/job/schema.js";
import { jobIdOf, refs } from "../actors/shared/names.js";
import { isRuntimeError } from "../runtime/errors.js";
import type { EffectContext } from "../runtime/runtime.js";
import { queueNames } from "../store/index-names.js";
import { readContext, sendOnce, type WorkloadContext } from "./context.js";
import { WorkloadError } from "./errors.js";

const LANES: readonly Lane[] = ["production", "analysis"];

export interface ReassignRequest {
  by: string;
  reason: string;
  /** Where the next attempt must run; null lets brokerage choose (anywhere but the site left). */
  site: string | null;
}

export interface ReassignOutcome {
  /** The attempts closed, each with the attempt that replaces it. */
  reassigned: { jobId: string; nextJobId: string }[];
  /** Live attempts left alone: they are running already (or ended meanwhile). */
  skipped: { jobId: string; state: string }[];
}

/**
 * A site named for the next attempt must exist and take new work (a test
 * job's too, when `test` is known), or the attempt would only fail brokerage.
 */
async function ensureSiteTakesWork(
  ctx: WorkloadContext,
  site: string | null,
  test: boolean | null,
): Promise<void> {
  if (site === null) return;
  const read = await readContext(ctx, "site", site);
  if (!read) throw new WorkloadError("NOT_FOUND", `site ${site} does not exist`, { site });
  const { status } = read.context;
  if (status === "offline" || status === "brokeroff")
    throw new WorkloadError("CONFLICT", `site ${site} is ${status}: brokerage sends it no work`, {
      site,
      status,
    });
  if (status === "test" && test === false)
    throw new WorkloadError("CONFLICT", `site ${site} is in test: it takes test jobs only`, { site, status });
}

function reassignEvent(request: ReassignRequest, atMs: number): JobEvent {
  return { type: "reassign", by: request.by, reason: request.reason, site: request.site, atMs };
}

/** Sends go out in groups this large: one commit carries many, and a caller holds few promises. */
const SEND_BATCH = 256;

/**
 * `sendReassign` to many attempts, a group at a time rather than one commit
 * round trip after another; answers, in order, which took it.
 */
export async function sendReassigns(
  ctx: WorkloadContext,
  sends: readonly { jobId: string; event: JobEvent; eventId?: string }[],
): Promise<boolean[]> {
  const took: boolean[] = [];
  for (let at = 0; at < sends.length; at += SEND_BATCH) {
    const group = sends.slice(at, at + SEND_BATCH);
    took.push(...(await Promise.all(group.map((s) => sendReassign(ctx, s.jobId, s.event, s.eventId)))));
  }
  return took;
}

/** Sends `reassign` to one attempt; false when the attempt no longer takes it (it runs, or ended). */
export async function sendReassign(
  ctx: WorkloadContext,
  jobId: string,
  event: JobEvent,
  eventId?: string,
): Promise<boolean> {
  try {
    const to = refs.job(jobId);
    await (eventId ? sendOnce(ctx, to, event, eventId) : ctx.runtime.send(to, event));
    return true;
  } catch (err) {
    if (isRuntimeError(err, "EVENT_NOT_ACCEPTED")) return false;
    throw err;
  }
}

/** An operator's reassignment of one attempt; refused (CONFLICT) once it runs or ended. */
export async function reassignJob(
  ctx: WorkloadContext,
  jobId: string,
  request: ReassignRequest,
): Promise<ReassignOutcome> {
  const job = await readContext(ctx, "job", jobId);
  if (!job) throw new WorkloadError("NOT_FOUND", `job ${jobId} does not exist`, { jobId });
  await ensureSiteTakesWork(ctx, request.site, job.context.test);
  if (!(await sendReassign(ctx, jobId, reassignEvent(request, ctx.runtime.clock.nowMs())))) {
    throw new WorkloadError(
      "CONFLICT",
      `job ${jobId} is ${job.state}: only a job that is not running yet can be reassigned`,
      { jobId, state: job.state },
    );
  }
  const { taskId, index, attempt } = job.context;
  return { reassigned: [{ jobId, nextJobId: jobIdOf(taskId, index, attempt + 1) }], skipped: [] };
}

/** An operator's reassignment of every live job of a task that is not running yet. */
export async function reassignTask(
  ctx: WorkloadContext,
  taskId: string,
  request: ReassignRequest,
): Promise<ReassignOutcome> {
  const task = await readContext(ctx, "task", taskId);
  if (!task) throw new WorkloadError("NOT_FOUND", `task ${taskId} does not exist`, { taskId });
  // Whether the task's jobs are test jobs is in the jobs, not the task: brokerage judges each.
  await ensureSiteTakesWork(ctx, request.site, null);
  const { attempts, outcomes } = task.context;
  const event = reassignEvent(request, ctx.runtime.clock.nowMs());
  const live: { jobId: string; nextJobId: string }[] = [];
  for (const [index, ended] of outcomes.entries()) {
    if (ended !== null) continue;
    const attempt = attempts[index] ?? 1;
    live.push({ jobId: jobIdOf(taskId, index, attempt), nextJobId: jobIdOf(taskId, index, attempt + 1) });
  }
  const took = await sendReassigns(
    ctx,
    live.map(({ jobId }) => ({ jobId, event })),
  );
  const outcome: ReassignOutcome = { reassigned: [], skipped: [] };
  for (const [i, job] of live.entries()) {
    if (took[i]) outcome.reassigned.push(job);
    else {
      const state = (await readContext(ctx, "job", job.jobId))?.state ?? "unknown";
      outcome.skipped.push({ jobId: job.jobId, state });
    }
  }
  return outcome;
}

/**
 * The site went offline (its `site.offline` effect): every job queued there
 * (`activated`) is reassigned. Event ids derive from the effect's, so a
 * redelivered effect reassigns nothing twice; a job that moved on meanwhile
 * refuses, harmlessly.
 */
export function siteOfflineHandler(ctx: WorkloadContext) {
  return async (data: unknown, effect: EffectContext): Promise<void> => {
    const { site } = data as { site: string };
    const request: ReassignRequest = { by: "auto", reason: `site ${site} went offline`, site: null };
    const event = reassignEvent(request, ctx.runtime.clock.nowMs());
    for (const queue of LANES.flatMap((lane) =>
      ctx.settings.queueShares.map((share) => queueNames.siteQueue(site, lane, share)),
    )) {
      const queued = await ctx.runtime.readIndex(queue, 0, Number.MAX_SAFE_INTEGER);
      await sendReassigns(
        ctx,
        queued.map(({ member }) => ({
          jobId: member,
          event,
          eventId: `${effect.effectId}:reassign:${member}`,
        })),
      );
    }
    ctx.log.info({ site }, "site offline: its queued jobs reassigned");
  };
}
