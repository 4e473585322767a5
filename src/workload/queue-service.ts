import { z } from "zod";
import { refs } from "../actors/shared/names.js";
import { validate } from "../protocol/codec.js";
import type { EffectContext } from "../runtime/runtime.js";
import { queueNames } from "../store/queue-index.js";
import { sendOnce, type WorkloadContext } from "./context.js";

/** A queue entry as `src/actors/job/outbound.ts` builds it for `queue.add`. */
const queueEntrySchema = z.object({
  site: z.string(),
  jobId: z.string(),
  taskId: z.string(),
  attempt: z.number().int(),
  priority: z.number().int(),
  type: z.enum(["production", "analysis"]),
  user: z.string(),
  group: z.string().nullable(),
  resources: z.object({ walltimeSec: z.number().int() }).loose(),
  activatedAtMs: z.number().nullable(),
});
export type QueueEntry = z.infer<typeof queueEntrySchema>;

const queueRemovalSchema = z.object({ site: z.string().nullable(), jobId: z.string() });
const jobFinalSchema = z.object({
  jobId: z.string(),
  user: z.string(),
  site: z.string().nullable(),
  /** Absent in effects committed before it was added: then the job may have been throttled. */
  from: z.string().nullable().optional(),
});

export type Lane = "production" | "analysis";

/**
 * Higher priority first, then older first. Priority is an integer and times
 * are whole seconds, so both fit exactly in one double.
 */
export function queueScore(priority: number, activatedAtMs: number): number {
  return -priority * 2 ** 32 + Math.floor(activatedAtMs / 1000);
}

/** Analysis work has its own lane, so short jobs can be found without scanning production. */
export function laneOf(type: QueueEntry["type"]): Lane {
  return type === "analysis" ? "analysis" : "production";
}

/**
 * Site queues and the per-user quota. An activated job joins its site's queue
 * unless its user already has `maxActiveJobsPerUser` jobs between activated
 * and running; then it is told to wait `throttled`, and it is released when
 * one of the user's jobs ends. Counting is per user across the grid.
 */
export class QueueService {
  constructor(private readonly ctx: WorkloadContext) {}

  readonly add = async (data: unknown, effect: EffectContext): Promise<void> => {
    const entry = validate(queueEntrySchema, data, "queue.add");
    const { index, settings } = this.ctx;
    const nowMs = this.ctx.runtime.clock.nowMs();
    const active = queueNames.userActive(entry.user);
    const admitted = await index.addIfBelow(active, entry.jobId, nowMs, settings.maxActiveJobsPerUser);
    if (!admitted) {
      await index.add(
        queueNames.userThrottled(entry.user),
        entry.jobId,
        queueScore(0, entry.activatedAtMs ?? nowMs),
      );
      const reason = `user ${entry.user} has ${settings.maxActiveJobsPerUser} active jobs (the quota)`;
      await sendOnce(
        this.ctx,
        refs.job(entry.jobId),
        { type: "throttle", reason, atMs: nowMs },
        `${effect.effectId}:throttle`,
      ).catch((err: unknown) => this.refused(entry.jobId, err));
      return;
    }
    await index.add(
      queueNames.siteQueue(entry.site, laneOf(entry.type)),
      entry.jobId,
      queueScore(entry.priority, entry.activatedAtMs ?? nowMs),
    );
    this.ctx.onActivated(entry.site);
  };

  readonly remove = async (data: unknown): Promise<void> => {
    const { site, jobId } = validate(queueRemovalSchema, data, "queue.remove");
    if (!site) return;
    await Promise.all(
      (["production", "analysis"] as const).map((lane) =>
        this.ctx.index.remove(queueNames.siteQueue(site, lane), jobId),
      ),
    );
  };

  /** A job ended: its quota slot frees, and the user's oldest throttled jobs take the room. */
  readonly final = async (data: unknown, effect: EffectContext): Promise<void> => {
    const { jobId, user, from } = validate(jobFinalSchema, data, "job.final");
    const { index, settings } = this.ctx;
    const throttled = queueNames.userThrottled(user);
    await index.remove(queueNames.userActive(user), jobId);
    // A release pops its entry, so only a job killed while throttled still has one.
    if (from === undefined || from === "throttled") await index.remove(throttled, jobId);
    if ((await index.size(throttled)) === 0) return;
    const room = settings.maxActiveJobsPerUser - (await index.size(queueNames.userActive(user)));
    if (room <= 0) return;
    const released = await index.popMin(throttled, room);
    const atMs = this.ctx.runtime.clock.nowMs();
    await Promise.all(
      released.map((e) =>
        sendOnce(
          this.ctx,
          refs.job(e.member),
          { type: "release", atMs },
          `${effect.effectId}:release:${e.member}`,
        ).catch((err: unknown) => this.refused(e.member, err)),
      ),
    );
  };

  /** A job that moved on (killed meanwhile) refuses throttle/release: nothing is left to do for it. */
  private refused(jobId: string, err: unknown): void {
    this.ctx.log.info({ jobId, err: (err as Error).message }, "queue event refused by job");
  }
}
