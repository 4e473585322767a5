/**
 * What a kind of actor declares to the runtime (its machine, version, schemas,
 * constant fields, projections, expansions) and the registry of the kinds a node hosts.
 */
import type { AnyStateMachine, EventObject } from "xstate";
import type { z } from "zod";
import { type ActorRef, actorKindSchema } from "./actor-ref.js";
import type { MachineState } from "./compiled-machine.js";
import type { EmitEffectParams, SendEventParams } from "./effects.js";
import { RuntimeError } from "./errors.js";

/** A snapshot as persisted: plain data, no functions, no children. */
export interface PersistedState {
  value: unknown;
  context: unknown;
  status: "active" | "done" | "error" | "stopped";
  output?: unknown;
}

/**
 * A machine kind the runtime can host.
 *
 * `version` is bumped whenever a change to the machine could misread an old
 * snapshot; `migrate` lifts a snapshot from an older supported version.
 */
export interface KindDefinition<M extends AnyStateMachine = AnyStateMachine> {
  kind: string;
  machine: M;
  version: number;
  /** The event type that creates the actor; its `input` field becomes the machine's input. */
  createEvent?: string;
  /** Validates the payload of every event sent to this kind, before the machine sees it. */
  eventSchema?: z.ZodType;
  /** Oldest stored version `migrate` can lift; defaults to `version` (no migration). */
  minVersion?: number;
  migrate?: (fromVersion: number, state: PersistedState) => PersistedState;
  /**
   * Context fields set when the actor is created and (almost) never changed:
   * stored once beside the snapshot instead of in every snapshot. A hint, not
   * a promise: a transition that replaces one of them (a new value, compared by
   * reference) has them all written again with its commit.
   */
  constantContext?: readonly string[];
  /** Indexes and counters derived from the kind's states (see `KindProjections`). */
  projections?: KindProjections;
  /** Effects that keep indexes outside the shard, derived from the kind's transitions (see `GlobalProjections`). */
  globalProjections?: GlobalProjections;
  /** Sends and effects that follow from a transition alone, not written in the machine (see `TransitionEffects`). */
  transitionEffects?: TransitionEffects;
  /**
   * False: an applied create's history entry leaves the input out, because
   * the actor's constant fields hold it already (a job's input is its spec:
   * stored once, not twice). A refused create keeps it. Default true.
   */
  historyKeepsCreateInput?: boolean;
  /**
   * Emitted effects of this kind that stand for many sends creating new work
   * (a task's jobs), by effect name (see `IntakeExpander`).
   */
  expansions?: Readonly<Record<string, IntakeExpander>>;
  /**
   * The group an actor of this kind is created in by an expansion (a job:
   * its task's id, read off its id), or null: a send to the actor is then
   * checked only against the held expansions of that group, the group of
   * their first target. Without it, a send to the kind is checked against
   * every held expansion that creates the kind.
   */
  intakeGroupOf?: (id: string) => string | null;
}

/**
 * Turns one emitted effect into the sends that create new work. A whole
 * submission is then one outbox entry, held by admission control as one
 * entry (`IntakeGate`), and each send is built only when its turn comes, not
 * when the work was accepted: taking a submission costs the node the same
 * whether it holds one job or a thousand. Pure and synchronous: run when the
 * effect is delivered, in outbox order, so a later send to one of its
 * targets not yet created queues behind that creation.
 */
export type IntakeExpander = (data: unknown, effectId: string) => IntakeExpansion;

export interface IntakeExpansion {
  /** How many sends: one to each of `target(0)` .. `target(count - 1)`, in that order. */
  count: number;
  /**
   * The actor the send at `index` goes to: every target of one kind, and of
   * one group of that kind (`KindDefinition.intakeGroupOf`).
   */
  target(index: number): ActorRef;
  /** Which target an actor id of the targets' kind is, or -1 when it is none of them. */
  indexOf(id: string): number;
  /**
   * The event for `target(index)` and its id: stable across redeliveries
   * of the effect (derived from `effectId`), so a send that was applied
   * before a crash is dropped as a duplicate when it is repeated.
   */
  build(index: number): { event: EventObject; eventId: string };
}

/** What one actor's state contributes to its shard's indexes and counters. */
export interface Projection {
  /** The index memberships of the state: the actor is `member` of index `key` with `score`. */
  index: { key: string; member: string; score: number }[];
  /** Counter contributions of the state: +value to `name` while the actor is in it. */
  counters: { name: string; value: number }[];
}

/**
 * Indexes and counters derived from a kind's states: a pure function of one
 * actor's state. The runtime writes the difference between the state before
 * and after a commit record into that record's commit, so an index or
 * counter can never disagree with the actors, crash or no crash.
 */
export interface KindProjections {
  /**
   * Bumped whenever `of` would say something else for a stored state: a node
   * taking over a shard written under older rules rebuilds its indexes.
   */
  version: number;
  /** Every counter name `of` gives starts with one of these: a rebuild resets exactly those. */
  counterPrefixes: readonly string[];
  of(state: MachineState, id: string): Projection;
}

/** One applied transition of one actor, as `GlobalProjections` see it. */
export interface ActorChange {
  id: string;
  /** Null when the event created the actor. */
  before: MachineState | null;
  after: MachineState;
  event: EventObject;
  /** The commit's time. */
  atMs: number;
}

/**
 * What a transition changes in indexes that live outside its shard (the task
 * list, the dataset catalog, the incident log), as effects: a commit writes
 * only its shard's keys, so these go into the same commit's outbox, and the
 * outbox delivers them at least once, crash or no crash. A pure function of
 * the change; the effects' ids are derived from the event's, so a handler
 * writing them idempotently (the same member, score and record) writes each
 * once in effect. Kept apart from the machine: a transition's own effects
 * stay what the machine says.
 */
export type GlobalProjections = (change: ActorChange) => readonly EmitEffectParams[];

/**
 * What a transition tells other actors and the world because of the change
 * itself (a job's end reported to its site, from which state to which),
 * declared by the kind instead of repeated in the entry of every state: a
 * pure function of the change, run by the runtime for every applied event.
 * Its sends and effects go into the transition's outbox ahead of the
 * machine's own (they stand where an entry action's would), with ids
 * `<eventId>:c<n>`, stable as the event's id is, so a redelivery dedupes.
 * Inline effect handlers answer them as they answer the machine's.
 */
export type TransitionEffects = (change: ActorChange) => readonly (SendEventParams | EmitEffectParams)[];

export const DEFAULT_CREATE_EVENT = "create";

export class KindRegistry {
  private readonly kinds = new Map<string, KindDefinition>();

  register<M extends AnyStateMachine>(definition: KindDefinition<M>): this {
    const kind = actorKindSchema.safeParse(definition.kind);
    if (!kind.success)
      throw new RuntimeError("UNKNOWN_KIND", `bad kind name ${JSON.stringify(definition.kind)}`);
    if (this.kinds.has(definition.kind)) {
      throw new RuntimeError("UNKNOWN_KIND", `kind ${definition.kind} is already registered`);
    }
    if (!Number.isInteger(definition.version) || definition.version < 1) {
      throw new RuntimeError("UNKNOWN_KIND", `kind ${definition.kind}: version must be a positive integer`);
    }
    this.kinds.set(definition.kind, definition as KindDefinition);
    return this;
  }

  get(kind: string): KindDefinition {
    const definition = this.kinds.get(kind);
    if (!definition) {
      throw new RuntimeError("UNKNOWN_KIND", `unknown actor kind ${JSON.stringify(kind)}`, {
        known: [...this.kinds.keys()],
      });
    }
    return definition;
  }

  has(kind: string): boolean {
    return this.kinds.has(kind);
  }

  list(): string[] {
    return [...this.kinds.keys()].sort();
  }

  /**
   * The version of every kind's projection rules together: a shard whose
   * indexes were built under another is rebuilt. Each kind's version only
   * grows, so the sum changes whenever one does.
   */
  projectionVersion(): number {
    let version = 0;
    for (const definition of this.kinds.values()) version += definition.projections?.version ?? 0;
    return version;
  }
}
