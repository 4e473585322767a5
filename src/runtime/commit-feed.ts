/** Who hears of a node's commits: observers of each group commit and listeners to each committed transition. */
import { type ActorRef, actorKeyOf } from "./actor-ref.js";
import type { CommittedTransition } from "./settle-batch.js";

export type CommitObserver = (shard: number, records: number, durationMs: number) => void;
export type TransitionListener = (transitions: CommittedTransition[]) => void;

export class CommitFeed {
  private readonly observers = new Set<CommitObserver>();
  private readonly listeners = new Set<TransitionListener>();
  /** Shard batches committed, and the records in them. */
  readonly counts = { commits: 0, committedRecords: 0 };

  onCommit(observer: CommitObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  onTransitions(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first committed transition of `ref` for which `predicate` holds. */
  waitForTransition(
    ref: ActorRef,
    predicate: (t: CommittedTransition) => boolean,
  ): Promise<CommittedTransition> {
    const actor = actorKeyOf(ref);
    return new Promise((resolve) => {
      const off = this.onTransitions((transitions) => {
        const hit = transitions.find((t) => t.actor === actor && predicate(t));
        if (hit) {
          off();
          resolve(hit);
        }
      });
    });
  }

  committed(shard: number, records: number, durationMs: number): void {
    this.counts.commits++;
    this.counts.committedRecords += records;
    for (const observer of this.observers) observer(shard, records, durationMs);
  }

  transitions(transitions: CommittedTransition[]): void {
    for (const listener of this.listeners) listener(transitions);
  }
}
