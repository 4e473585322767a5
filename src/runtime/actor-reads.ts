/**
 * Reads of one actor's committed state and history, from any node: the copy
 * a host of its shard holds in memory where the caller accepts it, else the
 * store.
 */
import type { ActorKey, Store } from "../store/types.js";
import { type ActorRef, actorKeyOf, shardOf } from "./actor-ref.js";
import type { KindDefinition, KindRegistry } from "./kinds.js";
import { decodeHistoryEntry, type HistoryEntry, stateValueToString } from "./records.js";
import type { ActorView } from "./runtime-options.js";
import { type LiveActor, restore } from "./step.js";

export interface ActorReadsDeps {
  store: Store;
  registry: KindRegistry;
  shardCount: number;
  /** The committed copy of an actor held by this node's host of its shard, if any. */
  resident(shard: number, actor: ActorKey): LiveActor | undefined;
}

export class ActorReads {
  constructor(private readonly deps: ActorReadsDeps) {}

  resident(ref: ActorRef): LiveActor["state"] | undefined {
    const actor = actorKeyOf(ref);
    return this.deps.resident(shardOf(actor, this.deps.shardCount), actor)?.state;
  }

  async state(ref: ActorRef, acceptResident: boolean): Promise<Omit<ActorView, "history"> | null> {
    const actor = actorKeyOf(ref);
    const definition = this.deps.registry.get(ref.kind);
    const shard = shardOf(actor, this.deps.shardCount);
    const resident = acceptResident ? this.deps.resident(shard, actor) : undefined;
    const live = resident ?? (await this.load(definition, actor, shard));
    if (!live) return null;
    return {
      kind: ref.kind,
      id: ref.id,
      version: live.version,
      state: stateValueToString(live.state.value),
      value: live.state.value,
      status: live.state.status,
      context: live.state.context,
    };
  }

  async inspect(ref: ActorRef, historyLimit: number): Promise<ActorView | null> {
    const actor = actorKeyOf(ref);
    const shard = shardOf(actor, this.deps.shardCount);
    const [state, historyBytes] = await Promise.all([
      this.state(ref, false),
      this.deps.store.readHistory(shard, actor, historyLimit),
    ]);
    if (!state) return null;
    return { ...state, history: historyBytes.map((bytes) => decodeHistoryEntry(bytes)) };
  }

  /** The history entry of the event with this id, among the actor's last `lookBack` entries; null when not there (yet). */
  async entryOf(ref: ActorRef, eventId: string, lookBack: number): Promise<HistoryEntry | null> {
    const actor = actorKeyOf(ref);
    const entries = await this.deps.store.readHistory(shardOf(actor, this.deps.shardCount), actor, lookBack);
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = decodeHistoryEntry(entries[i]!);
      if (entry.id === eventId) return entry;
    }
    return null;
  }

  private async load(definition: KindDefinition, actor: ActorKey, shard: number): Promise<LiveActor | null> {
    const [stored] = await this.deps.store.loadActors(shard, [actor]);
    if (!stored) return null;
    return restore(definition, actor, stored.version, stored.snapshot, stored.constants);
  }
}
