/**
 * Carries committed effects to where they act: a send to an actor of a
 * shard this node hosts goes into its mailbox, any other into the target
 * shard's durable inbox; an emitted effect runs its handler (or, for an
 * expansion, becomes many sends paced by admission control). Each effect is
 * acknowledged in its outbox once its fate is settled, and stays in flight
 * until that acknowledgement is written, so no sweep delivers it twice.
 */
import type { ActorKey, OutboxEntry, Store } from "../store/types.js";
import { type ActorRef, actorKeyOf, parseActorKey, shardOf } from "./actor-ref.js";
import type { Delivery } from "./delivery.js";
import type { InlineEffectHandler } from "./inline-effects.js";
import type { HeldDelivery, IntakeGate } from "./intake-gate.js";
import { KeyedBatcher } from "./keyed-batcher.js";
import type { IntakeExpander, IntakeExpansion, KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import { type AnyEvent, decodeEffectPayload, type EffectPayload, encodeInboxPayload } from "./records.js";
import type { Runtime } from "./runtime.js";

export interface EffectContext {
  /** The actor that emitted the effect. */
  from: ActorRef;
  /** Stable across redeliveries: handlers use it to drop duplicates. */
  effectId: string;
  runtime: Runtime;
}

export type EffectHandler = (data: unknown, context: EffectContext) => Promise<void> | void;

/** Where a send can go straight into a mailbox: the host of a shard this node owns, while it accepts. */
export interface MailboxTarget {
  readonly accepting: boolean;
  enqueue(delivery: Delivery): void;
}

export interface EffectRouterDeps {
  store: Store;
  registry: KindRegistry;
  log: Logger;
  shardCount: number;
  /** The runtime handlers are given in their context. */
  runtime: Runtime;
  hostOf(shard: number): MailboxTarget | undefined;
  /** Admission control for sends that create work; null delivers them at once. */
  intake: IntakeGate | null;
  /** See `RuntimeOptions.ackOutboxAfterMs`. */
  ackOutboxAfterMs: number;
}

type SendEffect = Extract<EffectPayload, { t: "send" }>;
type EmitEffect = Extract<EffectPayload, { t: "emit" }>;

/**
 * An expansion's sends held by admission control as one entry: the gate
 * lets them through one at a time, each built only then. `next` is the
 * first target not yet sent to, so a send to a target below it has no
 * creation to wait for.
 */
class HeldExpansion implements HeldDelivery {
  next = 0;

  constructor(
    readonly expansion: IntakeExpansion,
    /** Where the router files it: its targets' kind, and their group of that kind ("" for none). */
    readonly kind: string,
    readonly group: string,
    private readonly onRelease: (index: number) => void,
    private readonly onDrop: () => void,
  ) {}

  get count(): number {
    return this.expansion.count;
  }

  release(): void {
    this.onRelease(this.next++);
  }

  drop(): void {
    this.onDrop();
  }

  /** A send to `id` (of the targets' kind, in their group) must wait: its creation is still held here. */
  holds(id: string): boolean {
    return this.expansion.indexOf(id) >= this.next;
  }
}

export class EffectRouter {
  private readonly handlers = new Map<string, EffectHandler>();
  private readonly inlineHandlers = new Map<string, InlineEffectHandler>();
  /** Effects being delivered, from their delivery until their acknowledgement is written. */
  private readonly inFlight = new Set<string>();
  /**
   * Outbox reads under way, each with the effects of its shard whose
   * acknowledgement was written since it was sent: its answer may still
   * list them, and delivering them again would cost their receivers a
   * duplicate (and an actor's folded record a split).
   */
  private readonly outboxReads = new Set<{ shard: number; acked: Set<string> }>();
  private readonly unhandledWarned = new Set<string>();
  private readonly outboxAcks: KeyedBatcher<number, string>;
  private readonly inboxAppends: KeyedBatcher<number, { eventId: string; payload: Buffer }>;
  /** Actors with single sends held by admission control, and how many: later sends to them queue behind. */
  private readonly heldFor = new Map<string, number>();
  /**
   * Held expansions by their targets' kind, then group: a send to an actor
   * of that group whose creation one of them still holds queues behind it.
   * One entry per expansion, not per target; a send to a kind no held
   * expansion creates is told apart by its kind alone.
   */
  private readonly heldExpansions = new Map<string, Map<string, HeldExpansion[]>>();
  private delivered = 0;

  constructor(private readonly deps: EffectRouterDeps) {
    this.outboxAcks = new KeyedBatcher(
      { together: (idsByShard) => deps.store.ackOutbox(idsByShard) },
      deps.ackOutboxAfterMs,
    );
    this.inboxAppends = new KeyedBatcher({
      perKey: async (shard, entries) => {
        await deps.store.appendInbox(shard, entries);
      },
    });
  }

  /** Effects whose fate is settled and acknowledged (or being acknowledged). */
  get effectsDelivered(): number {
    return this.delivered;
  }

  /** No acknowledgement or inbox append is gathering or in flight. */
  get idle(): boolean {
    return this.outboxAcks.idle && this.inboxAppends.idle;
  }

  onEffect(effect: string, handler: EffectHandler, inline?: InlineEffectHandler): void {
    this.handlers.set(effect, handler);
    if (inline) this.inlineHandlers.set(effect, inline);
    else this.inlineHandlers.delete(effect);
  }

  inlineHandler(effect: string): InlineEffectHandler | undefined {
    return this.inlineHandlers.get(effect);
  }

  /** Acknowledgements still gathering are written now (before a node lets go of its shards). */
  flushAcks(): Promise<void> {
    return this.outboxAcks.flushNow();
  }

  /** An event for a shard another node owns (or that is changing hands): into its durable inbox. */
  appendInbox(
    shard: number,
    actor: ActorKey,
    event: AnyEvent,
    cause: string,
    eventId: string,
  ): Promise<void> {
    return this.inboxAppends.add(shard, {
      eventId,
      payload: encodeInboxPayload({ a: actor, e: event, c: cause }),
    });
  }

  /** Delivers effects committed by `fromShard` (an effect already in flight is left to that delivery). */
  deliver(fromShard: number, effects: EffectPayload[]): void {
    for (const effect of effects) {
      if (this.inFlight.has(effect.id)) continue;
      this.inFlight.add(effect.id);
      const done = async () => {
        this.delivered++;
        await this.outboxAcks.add(fromShard, effect.id);
        // In flight until the acknowledgement is written: a sweep must not deliver it again meanwhile.
        this.inFlight.delete(effect.id);
        for (const read of this.outboxReads) if (read.shard === fromShard) read.acked.add(effect.id);
      };
      const failed = (err: unknown) => {
        this.inFlight.delete(effect.id);
        this.deps.log.warn(
          { effectId: effect.id, err: (err as Error)?.message },
          "effect delivery failed; will retry",
        );
      };
      const gate = this.deps.intake;
      if (effect.t === "send" && gate && (effect.lane === "intake" || this.creationHeld(effect.to))) {
        const to = effect.to;
        this.heldFor.set(to, (this.heldFor.get(to) ?? 0) + 1);
        gate.hold({
          count: 1,
          release: () => {
            this.leaveHeld(to);
            this.deliverSend(effect, done, failed);
          },
          drop: () => {
            this.leaveHeld(to);
            this.inFlight.delete(effect.id);
          },
        });
      } else if (effect.t === "send") this.deliverSend(effect, done, failed);
      else {
        const expand = this.expansionOf(effect);
        if (expand) this.deliverExpansion(effect, expand, done, failed);
        else this.runHandler(effect, done, failed);
      }
    }
  }

  /** Effects committed but not yet acknowledged: left by a crash, a failed delivery, or a missing handler. */
  async redeliverOutbox(shard: number): Promise<void> {
    const read = { shard, acked: new Set<string>() };
    this.outboxReads.add(read);
    let entries: OutboxEntry[];
    try {
      entries = await this.deps.store.readOutbox(shard, 1000);
    } finally {
      this.outboxReads.delete(read);
    }
    const effects: EffectPayload[] = [];
    for (const entry of entries) {
      if (this.inFlight.has(entry.effectId) || read.acked.has(entry.effectId)) continue;
      try {
        effects.push(decodeEffectPayload(entry.payload));
      } catch (err) {
        this.deps.log.error(
          { shard, effectId: entry.effectId, err: (err as Error).message },
          "unreadable effect dropped",
        );
        await this.deps.store.ackOutbox(new Map([[shard, [entry.effectId]]]));
      }
    }
    if (effects.length > 0) this.deliver(shard, effects);
  }

  /**
   * True when admission control holds a send that creates `to` (a single
   * send, or an expansion that has not reached it): a send to it then queues
   * too, behind that creation, so a task's kill never reaches a job before
   * the job exists (it would be created after and live on).
   */
  private creationHeld(to: ActorKey): boolean {
    if (this.heldFor.has(to)) return true;
    if (this.heldExpansions.size === 0) return false;
    // Every send asks while work is held: the kind alone answers most, before the id is cut out.
    const slash = to.indexOf("/");
    const kind = to.slice(0, slash);
    const byGroup = this.heldExpansions.get(kind);
    if (!byGroup) return false;
    const id = to.slice(slash + 1);
    const held = byGroup.get(this.groupOf(kind, id));
    return held?.some((h) => h.holds(id)) ?? false;
  }

  /** The held-expansion group of an actor: its kind's `intakeGroupOf`, "" where it has none. */
  private groupOf(kind: string, id: string): string {
    const { registry } = this.deps;
    return (registry.has(kind) ? registry.get(kind).intakeGroupOf?.(id) : null) ?? "";
  }

  /** A held send to `target` was released or dropped: one fewer for later sends to queue behind. */
  private leaveHeld(target: ActorKey): void {
    const left = (this.heldFor.get(target) ?? 1) - 1;
    if (left > 0) this.heldFor.set(target, left);
    else this.heldFor.delete(target);
  }

  private holdExpansion(gate: IntakeGate, held: HeldExpansion): void {
    const { kind, group } = held;
    let byGroup = this.heldExpansions.get(kind);
    if (!byGroup) {
      byGroup = new Map();
      this.heldExpansions.set(kind, byGroup);
    }
    const list = byGroup.get(group);
    if (list) list.push(held);
    else byGroup.set(group, [held]);
    gate.hold(held);
  }

  /** A held expansion sent its last or was dropped: no later send waits for it. */
  private leaveHeldExpansion(held: HeldExpansion): void {
    const { kind, group } = held;
    const byGroup = this.heldExpansions.get(kind);
    const list = byGroup?.get(group);
    if (!byGroup || !list) return;
    const at = list.indexOf(held);
    if (at >= 0) list.splice(at, 1);
    if (list.length > 0) return;
    byGroup.delete(group);
    if (byGroup.size === 0) this.heldExpansions.delete(kind);
  }

  private expansionOf(effect: EmitEffect): IntakeExpander | undefined {
    const { kind } = parseActorKey(effect.from);
    const { registry } = this.deps;
    return registry.has(kind) ? registry.get(kind).expansions?.[effect.effect] : undefined;
  }

  /**
   * Delivers an effect that stands for many sends creating new work (see
   * `IntakeExpander`): each send waits for admission and is built only then.
   * The effect is acknowledged once every send's fate is committed; if one
   * fails or the gate drops it, the effect stays in the outbox and its
   * redelivery repeats every send, the applied ones dropped as duplicates.
   */
  private deliverExpansion(
    effect: EmitEffect,
    expand: IntakeExpander,
    done: () => Promise<void>,
    failed: (err: unknown) => void,
  ): void {
    let expansion: IntakeExpansion;
    try {
      expansion = expand(effect.data, effect.id);
    } catch (err) {
      failed(err);
      return;
    }
    let left = expansion.count;
    if (left <= 0) {
      done().catch(failed);
      return;
    }
    let gaveUp = false;
    const giveUp = (err: unknown) => {
      if (gaveUp) return;
      gaveUp = true;
      failed(err);
    };
    const settled = () => {
      left--;
      return left === 0 && !gaveUp ? done() : Promise.resolve();
    };
    const send = (index: number) => {
      const { event, eventId } = expansion.build(index);
      const to = actorKeyOf(expansion.target(index));
      this.deliverSend(
        { t: "send", id: eventId, from: effect.from, to, e: event as AnyEvent, lane: "intake" },
        settled,
        giveUp,
      );
    };
    const gate = this.deps.intake;
    if (!gate) {
      for (let index = 0; index < expansion.count; index++) send(index);
      return;
    }
    const first = expansion.target(0);
    const held: HeldExpansion = new HeldExpansion(
      expansion,
      first.kind,
      this.groupOf(first.kind, first.id),
      (index) => {
        // Past the last target no later send can wait for it: it leaves before its send goes.
        if (index === expansion.count - 1) this.leaveHeldExpansion(held);
        send(index);
      },
      () => {
        this.leaveHeldExpansion(held);
        if (gaveUp) return;
        gaveUp = true;
        this.inFlight.delete(effect.id);
      },
    );
    this.holdExpansion(gate, held);
  }

  private deliverSend(effect: SendEffect, done: () => Promise<void>, failed: (err: unknown) => void): void {
    const shard = shardOf(effect.to, this.deps.shardCount);
    const host = this.deps.hostOf(shard);
    const cause = `effect:${effect.from}`;
    if (host?.accepting) {
      host.enqueue({
        actor: effect.to,
        event: effect.e,
        eventId: effect.id,
        cause,
        source: { kind: "effect", settled: () => void done().catch(failed), failed },
        attempts: 0,
      });
      return;
    }
    this.appendInbox(shard, effect.to, effect.e, cause, effect.id).then(done).catch(failed);
  }

  private runHandler(effect: EmitEffect, done: () => Promise<void>, failed: (err: unknown) => void): void {
    const handler = this.handlers.get(effect.effect);
    if (!handler) {
      this.inFlight.delete(effect.id);
      if (!this.unhandledWarned.has(effect.effect)) {
        this.unhandledWarned.add(effect.effect);
        this.deps.log.warn({ effect: effect.effect }, "no handler for effect; it stays in the outbox");
      }
      return;
    }
    const context: EffectContext = {
      from: parseActorKey(effect.from),
      effectId: effect.id,
      runtime: this.deps.runtime,
    };
    Promise.resolve()
      .then(() => handler(effect.data, context))
      .then(done)
      .catch(failed);
  }
}
