/**
 * Admission of activated jobs: the per-user quota, and the shortcut to a
 * pilot thread that is already waiting. A job's place in its site's queue,
 * its user's throttled list and its count against the quota all follow from
 * the job's own state (the job kind's projections, committed with it); this
 * service only decides, as each job is activated, whether it may go on.
 */
import { laneOf, queueScore } from "../actors/job/projections.js";
import type { JobEvent } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import type { MachineState } from "../runtime/compiled-machine.js";
import type { EffectContext } from "../runtime/runtime.js";
import type { InlineOutcome } from "../runtime/shard-host.js";
import { queueNames } from "../store/index-names.js";
import { sendOnce, type WorkloadContext } from "./context.js";

export type { Lane } from "../actors/job/projections.js";
export { laneOf, queueScore };

/** A queue entry as `src/actors/job/outbound.ts` builds it for `queue.add`: the job's own data, trusted. */
export interface QueueEntry {
  site: string | null;
  jobId: string;
  taskId: string;
  attempt: number;
  priority: number;
  type: "production" | "analysis";
  user: string;
  group: string | null;
  resources: { walltimeSec: number };
  activatedAtMs: number | null;
  /** Only a test job may go to a site in status `test`. */
  test?: boolean;
}

interface JobFinal {
  jobId: string;
  user: string;
  site: string | null;
}

/** A waiting pilot thread bound to a job being activated, if one fits (the dispatcher's offer). */
export interface ThreadOffer {
  dispatch: JobEvent;
  /** Whether the dispatch committed, with the job's state after it: push it, or give the thread back. */
  settled(committed: boolean, state: MachineState | null): void;
}

export class QueueService {
  /** Admissions planned but not committed yet, per user: the quota counts them before their commit lands. */
  private readonly admitting = new Map<string, number>();

  constructor(private readonly ctx: WorkloadContext) {}

  /**
   * A job is being activated (its `queue.add`, answered inline, before the
   * commit): throttled when its user is at the quota, else bound at once to
   * a waiting pilot thread that fits, else left in its site's queue.
   */
  readonly admit = (data: unknown, effect: { effectId: string; nowMs: number }): InlineOutcome => {
    const entry = data as QueueEntry;
    const { settings } = this.ctx;
    const pending = this.admitting.get(entry.user) ?? 0;
    if (this.activeJobs(entry.user) + pending >= settings.maxActiveJobsPerUser) {
      return { handled: true, events: [this.throttleEvent(entry.user, effect.nowMs)] };
    }
    this.admitting.set(entry.user, pending + 1);
    const offer = entry.site ? this.ctx.offerThread(entry, effect.nowMs) : null;
    return {
      handled: true,
      ...(offer ? { events: [offer.dispatch] } : {}),
      settled: (committed, state) => {
        const left = (this.admitting.get(entry.user) ?? 1) - 1;
        if (left > 0) this.admitting.set(entry.user, left);
        else this.admitting.delete(entry.user);
        offer?.settled(committed, state);
      },
    };
  };

  /**
   * The same decision for a `queue.add` that reached the outbox (written by
   * an older node, before admission was answered inline): the job is in its
   * site's queue already; only the quota may still send it back.
   */
  readonly add = async (data: unknown, effect: EffectContext): Promise<void> => {
    const entry = data as QueueEntry;
    if (this.activeJobs(entry.user) <= this.ctx.settings.maxActiveJobsPerUser) return;
    const nowMs = this.ctx.runtime.clock.nowMs();
    await sendOnce(
      this.ctx,
      refs.job(entry.jobId),
      this.throttleEvent(entry.user, nowMs),
      `${effect.effectId}:throttle`,
    ).catch((err: unknown) => this.refused(entry.jobId, err));
  };

  /**
   * A job ended (`job.final`, answered inline): nothing to do unless its
   * user has throttled jobs on this node's shards; those are released by the
   * durable path, after the commit. Throttled jobs on other nodes' shards,
   * and any release a crash cut short, the quota sweep takes care of.
   */
  readonly finalInline = (data: unknown): InlineOutcome => {
    const { user } = data as JobFinal;
    return this.ctx.runtime.local.size(queueNames.userThrottled(user)) > 0
      ? { handled: false }
      : { handled: true };
  };

  /** A job of a user with throttled jobs ended: the oldest of them take the room its end made. */
  readonly final = async (data: unknown, effect: EffectContext): Promise<void> => {
    const { user } = data as JobFinal;
    await this.release(user, this.ctx.settings.maxActiveJobsPerUser - this.activeJobs(user), effect.effectId);
  };

  /**
   * Releases what the quota allows for every user with throttled jobs
   * anywhere, from the committed counters: what no job end on this node
   * would release (throttled jobs on another node's shards, a release a
   * crash cut short). A release a job already had is refused, harmlessly.
   */
  async sweep(): Promise<void> {
    const { runtime, settings } = this.ctx;
    const counters = runtime.ownsAllShards()
      ? runtime.local.counters("users:")
      : await runtime.readCounters("users:");
    const atMs = runtime.clock.nowMs();
    for (const [name, throttled] of counters) {
      const user = queueNames.userOfThrottledCount(name);
      if (user === null || throttled <= 0) continue;
      const room = settings.maxActiveJobsPerUser - (counters.get(queueNames.userActive(user)) ?? 0);
      await this.release(user, Math.min(room, throttled), `sweep:${user}:${atMs}`);
    }
  }

  /** Releases the `room` oldest throttled jobs of `user`, with event ids derived from `cause`. */
  private async release(user: string, room: number, cause: string): Promise<void> {
    if (room <= 0) return;
    const released = await this.ctx.runtime.readIndex(queueNames.userThrottled(user), 0, room);
    const atMs = this.ctx.runtime.clock.nowMs();
    await Promise.all(
      released.map((e) =>
        sendOnce(
          this.ctx,
          refs.job(e.member),
          { type: "release", atMs },
          `${cause}:release:${e.member}`,
        ).catch((err: unknown) => this.refused(e.member, err)),
      ),
    );
  }

  /** Jobs of `user` counted against the quota on the shards this node owns, as committed. */
  private activeJobs(user: string): number {
    return this.ctx.runtime.local.counter(queueNames.userActive(user));
  }

  private throttleEvent(user: string, atMs: number): JobEvent {
    const reason = `user ${user} has ${this.ctx.settings.maxActiveJobsPerUser} active jobs (the quota)`;
    return { type: "throttle", reason, atMs };
  }

  /** A job that moved on (killed meanwhile) refuses throttle/release: nothing is left to do for it. */
  private refused(jobId: string, err: unknown): void {
    this.ctx.log.info({ jobId, err: (err as Error).message }, "queue event refused by job");
  }
}
