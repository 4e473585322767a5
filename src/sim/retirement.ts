/**
 * Drops job attempts that are over from the runtime's memory and the store,
 * with their dispatch dataset and subscription and their output
 * subscription, so that a simulated day holds what is live rather than
 * every job it ever ran. What the summary and samples need was counted as
 * the jobs went (`JobTracker`); task, site and input dataset actors stay.
 *
 * An attempt goes `graceMs` after it ended, once no pilot holds it any more
 * (a pilot that is told to kill a job it runs still reports on it) and its
 * subscriptions are over (a transfer still in flight reports to them): then
 * nothing addresses any of them again. Production keeps them; only the
 * simulator, which reads no finished job back, lets them go.
 */
import type { JobContext } from "../actors/job/schema.js";
import { outputSubscriptionId, refs } from "../actors/shared/names.js";
import { type ActorRef, actorKeyOf, shardOf } from "../runtime/actor-ref.js";
import type { Runtime } from "../runtime/runtime.js";
import type { CommittedTransition } from "../runtime/shard-host.js";
import type { MemoryStore } from "../store/memory-store.js";

/** A job attempt that is over, with the actors that were its own. */
interface Over {
  dueMs: number;
  jobId: string;
  /** The job, its dispatch dataset and subscription, its output subscription. */
  actors: ActorRef[];
  /** Subscriptions that must be over too before any of them goes. */
  subscriptions: ActorRef[];
}

export class Retirement {
  private readonly queue: Over[] = [];
  private head = 0;
  /** Actors dropped so far. */
  retired = 0;

  constructor(
    private readonly runtime: Runtime,
    private readonly store: MemoryStore,
    private readonly shardCount: number,
    private readonly heldByPilot: (jobId: string) => boolean,
    private readonly graceMs: number,
  ) {}

  readonly observe = (transitions: CommittedTransition[]): void => {
    for (const { actor, entry, state } of transitions) {
      if (!actor.startsWith("job/") || entry.refused || state?.status !== "done") continue;
      const job = state.context as JobContext;
      const actors = [refs.job(job.jobId)];
      const subscriptions: ActorRef[] = [];
      if (job.dispatch) {
        actors.push(refs.dataset(job.dispatch.dataset));
        subscriptions.push(refs.subscription(job.dispatch.subscription));
      }
      const destination = job.outputs.destination;
      if (destination !== null && destination !== job.site)
        subscriptions.push(refs.subscription(outputSubscriptionId(job.jobId, destination)));
      actors.push(...subscriptions);
      this.queue.push({ dueMs: entry.at + this.graceMs, jobId: job.jobId, actors, subscriptions });
    }
  };

  /** Drops what is due; call it while the runtime is quiescent. */
  sweep(nowMs: number): void {
    const queue = this.queue;
    while (this.head < queue.length && queue[this.head]!.dueMs <= nowMs) {
      const over = queue[this.head++]!;
      if (!this.ready(over)) {
        // Due again later than everything queued: the queue stays in due order.
        queue.push({ ...over, dueMs: nowMs + this.graceMs });
        continue;
      }
      const busy = this.runtime.retire(over.actors);
      for (const ref of over.actors) {
        if (busy.includes(ref)) continue;
        const actor = actorKeyOf(ref);
        this.store.forget(shardOf(actor, this.shardCount), [actor]);
        this.retired++;
      }
      if (busy.length > 0)
        queue.push({ ...over, actors: busy, subscriptions: [], dueMs: nowMs + this.graceMs });
    }
    if (this.head > 4096 && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private ready(over: Over): boolean {
    if (this.heldByPilot(over.jobId)) return false;
    for (const ref of over.subscriptions) {
      const state = this.runtime.residentState(ref);
      if (state && state.status !== "done") return false;
    }
    return true;
  }
}
