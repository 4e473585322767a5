/**
 * The commit-time half of `KindProjections`: what a record changes in its
 * shard's indexes and counters is the difference between what the actor's
 * state contributed before the record and after it; and what it changes in
 * global indexes, as effects committed with it.
 */
import type { ActorKey, CounterDelta, IndexEntry, IndexOp } from "../store/types.js";
import { actorKeyOf } from "./actor-ref.js";
import type { MachineState } from "./compiled-machine.js";
import type { ActorChange, KindDefinition, Projection } from "./kinds.js";
import type { AnyEvent, EffectPayload } from "./records.js";

const NOTHING: Projection = { index: [], counters: [] };

/**
 * What `state` of actor `id` contributes, or nothing for an actor that does
 * not exist. Computed again for the state a record starts from rather than
 * kept from the record that left it: kept (a WeakMap by state), every
 * resident actor held its projection's objects until its next transition,
 * which on a simulated grid is minutes of wall time, so each was copied by
 * the young generation's collector, promoted and marked, and the map's
 * entries weighed on every collection; a projection is a few microseconds.
 */
export function projectionOf(definition: KindDefinition, state: MachineState | null, id: string): Projection {
  if (!state || !definition.projections) return NOTHING;
  return definition.projections.of(state, id);
}

/** Index changes and counter deltas that take a shard from `before` to `after` for one actor. */
export function projectionChanges(
  before: Projection,
  after: Projection,
): { index: IndexOp[]; counters: CounterDelta[] } {
  const index: IndexOp[] = [];
  for (const old of before.index) {
    if (!after.index.some((e) => e.key === old.key && e.member === old.member)) {
      index.push({ key: old.key, member: old.member, score: null });
    }
  }
  for (const entry of after.index) {
    const old = before.index.find((e) => e.key === entry.key && e.member === entry.member);
    if (!old || old.score !== entry.score)
      index.push({ key: entry.key, member: entry.member, score: entry.score });
  }
  const counters: CounterDelta[] = [];
  for (const { name, value } of after.counters) {
    const was = before.counters.find((c) => c.name === name)?.value ?? 0;
    if (value !== was) counters.push({ name, delta: value - was });
  }
  for (const { name, value } of before.counters) {
    if (value !== 0 && !after.counters.some((c) => c.name === name)) counters.push({ name, delta: -value });
  }
  return { index, counters };
}

/** The whole of a shard's indexes and projected counters, summed from its actors' states (for a rebuild). */
export class ProjectionTotals {
  readonly indexes = new Map<string, IndexEntry[]>();
  readonly counters = new Map<string, number>();

  add(projection: Projection): void {
    for (const { key, member, score } of projection.index) {
      let entries = this.indexes.get(key);
      if (!entries) {
        entries = [];
        this.indexes.set(key, entries);
      }
      entries.push({ member, score });
    }
    for (const { name, value } of projection.counters) {
      this.counters.set(name, (this.counters.get(name) ?? 0) + value);
    }
  }
}

/**
 * The effects a kind's `globalProjections` derive from one applied event, as
 * outbox entries of its commit: ids `<eventId>:g<n>`, stable as the event's
 * id is, so a redelivery or a replanned commit carries the same ones.
 */
export function globalEffects(
  definition: KindDefinition,
  actor: ActorKey,
  eventId: string,
  change: ActorChange,
): EffectPayload[] {
  if (!definition.globalProjections) return [];
  return definition.globalProjections(change).map((emit, n) => ({
    t: "emit",
    id: `${eventId}:g${n + 1}`,
    from: actor,
    effect: emit.effect,
    data: emit.data,
  }));
}

/**
 * The sends and effects a kind's `transitionEffects` derive from one applied
 * event, as outbox entries: ids `<eventId>:c<n>`, stable as the event's id is.
 */
export function transitionEffects(
  definition: KindDefinition,
  actor: ActorKey,
  eventId: string,
  change: ActorChange,
): EffectPayload[] {
  if (!definition.transitionEffects) return [];
  return definition.transitionEffects(change).map((effect, n): EffectPayload => {
    const id = `${eventId}:c${n + 1}`;
    if ("effect" in effect) return { t: "emit", id, from: actor, effect: effect.effect, data: effect.data };
    const send: EffectPayload = {
      t: "send",
      id,
      from: actor,
      to: actorKeyOf(effect.to),
      e: effect.event as AnyEvent,
    };
    if (effect.lane === "intake") send.lane = "intake";
    return send;
  });
}
