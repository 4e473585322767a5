/**
 * The actors of one shard held in memory on this node, as last committed:
 * loaded from the store when a batch needs them (or taken to be new, without
 * a read, when their first event is their create), and let go when idle.
 */
import type { ActorKey, Store } from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import { RuntimeError } from "./errors.js";
import { DEFAULT_CREATE_EVENT, type KindRegistry } from "./kinds.js";
import type { AnyEvent } from "./records.js";
import { type LiveActor, restore } from "./step.js";

/** An actor as held in memory: alive, absent (version 0) or unreadable. */
export interface ActorSlot {
  live: LiveActor | null;
  /** Set when the stored snapshot cannot be restored; events are refused with this error. */
  broken: { version: number; error: RuntimeError } | null;
  lastUsedMs: number;
}

export class ActorSlots extends Map<ActorKey, ActorSlot> {
  constructor(
    private readonly shard: number,
    private readonly store: Store,
    private readonly registry: KindRegistry,
  ) {
    super();
  }

  /**
   * Makes a slot for every actor of the batch that has none. An actor whose
   * first event here is its create, tried for the first time, is taken to be
   * new without a read: its record expects version 0, so if it does exist
   * the commit says conflict, and the retry reads it (and refuses the create).
   * A job's creation then costs no read before its commit. Returns the
   * actors taken to be new, for `forgetAssumed`.
   */
  async load(
    batch: readonly { actor: ActorKey; event: AnyEvent; attempts: number }[],
    nowMs: number,
  ): Promise<ActorKey[]> {
    const missing: ActorKey[] = [];
    const assumed: ActorKey[] = [];
    const seen = new Set<ActorKey>();
    for (const { actor, event, attempts } of batch) {
      if (seen.has(actor)) continue;
      seen.add(actor);
      if (this.has(actor)) continue;
      if (attempts === 0 && event.type === this.createEventOf(actor)) {
        this.set(actor, { live: null, broken: null, lastUsedMs: nowMs });
        assumed.push(actor);
      } else {
        missing.push(actor);
      }
    }
    if (missing.length === 0) return assumed;
    const stored = await this.store.loadActors(this.shard, missing);
    missing.forEach((actor, i) => {
      const record = stored[i] ?? null;
      const slot: ActorSlot = { live: null, broken: null, lastUsedMs: nowMs };
      if (record) {
        try {
          const definition = this.registry.get(parseActorKey(actor).kind);
          slot.live = restore(definition, actor, record.version, record.snapshot, record.constants);
        } catch (err) {
          const error =
            err instanceof RuntimeError ? err : new RuntimeError("CORRUPT_SNAPSHOT", (err as Error).message);
          slot.broken = { version: record.version, error };
        }
      }
      this.set(actor, slot);
    });
    return assumed;
  }

  /** Slots taken to be new that no commit filled: the store was not asked, so they are not known absent. */
  forgetAssumed(assumed: readonly ActorKey[]): void {
    for (const actor of assumed) if (this.get(actor)?.live === null) this.delete(actor);
  }

  /** Lets go of actors unused for `idleMs`, then of the least recently used beyond `maxResident`. */
  evict(nowMs: number, idleMs: number, maxResident: number, inUse: (actor: ActorKey) => boolean): void {
    const horizon = nowMs - idleMs;
    for (const [actor, slot] of this) {
      if (slot.lastUsedMs < horizon && !inUse(actor)) this.delete(actor);
    }
    if (this.size > maxResident) {
      const idle = [...this].filter(([actor]) => !inUse(actor));
      idle.sort((a, b) => a[1].lastUsedMs - b[1].lastUsedMs);
      for (const [actor] of idle.slice(0, this.size - maxResident)) this.delete(actor);
    }
  }

  private createEventOf(actor: ActorKey): string {
    const kind = parseActorKey(actor).kind;
    if (!this.registry.has(kind)) return DEFAULT_CREATE_EVENT;
    return this.registry.get(kind).createEvent ?? DEFAULT_CREATE_EVENT;
  }
}
