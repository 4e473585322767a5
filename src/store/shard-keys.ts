/**
 * The one key builder. Every key of a shard carries the `{sNNN}` hash tag so
 * that all keys one commit touches hash to the same Redis Cluster slot.
 */
import type { ActorKey } from "./types.js";

/** Enough for the actors a busy shard commits within a few batches; an entry is a few hundred bytes, so 64 shards stay under ~10 MB. */
const RECENT_ACTORS_PER_SHARD = 512;

export interface ActorKeys {
  actor: string;
  history: string;
}

export class ShardKeys {
  readonly lease: string;
  readonly actors: string;
  readonly timers: string;
  readonly timerFire: string;
  readonly timerData: string;
  readonly inbox: string;
  readonly inboxData: string;
  readonly inboxSeq: string;
  readonly outbox: string;
  readonly outboxData: string;
  readonly outboxSeq: string;
  readonly seen: string;
  readonly counters: string;
  /** The names of the shard's index zsets that may hold members (a set). */
  readonly indexNames: string;
  /** The version of the rules the indexes were last rebuilt with. */
  readonly indexVersion: string;
  /** Prefix of index zsets: an index `key` is the zset `indexPrefix + key`. */
  readonly indexPrefix: string;
  /** Prefix of per-actor keys: the actor hash is `actorPrefix + actor`. */
  readonly actorPrefix: string;
  readonly historyPrefix: string;
  /** Recently used actors' key pairs, so a busy actor's keys are built once rather than per commit. */
  private readonly recentActors = new Map<ActorKey, ActorKeys>();

  constructor(prefix: string, shard: number) {
    const base = `${prefix}:{s${String(shard).padStart(3, "0")}}`;
    this.lease = `${base}:lease`;
    this.actors = `${base}:actors`;
    this.timers = `${base}:timers`;
    this.timerFire = `${base}:timer-fire`;
    this.timerData = `${base}:timer-data`;
    this.inbox = `${base}:inbox`;
    this.inboxData = `${base}:inbox-data`;
    this.inboxSeq = `${base}:inbox-seq`;
    this.outbox = `${base}:outbox`;
    this.outboxData = `${base}:outbox-data`;
    this.outboxSeq = `${base}:outbox-seq`;
    this.seen = `${base}:seen`;
    this.counters = `${base}:counters`;
    this.indexNames = `${base}:ix-names`;
    this.indexVersion = `${base}:ix-version`;
    this.indexPrefix = `${base}:ix:`;
    this.actorPrefix = `${base}:actor:`;
    this.historyPrefix = `${base}:history:`;
  }

  actor(actor: ActorKey): string {
    return this.actorPrefix + actor;
  }

  index(key: string): string {
    return this.indexPrefix + key;
  }

  history(actor: ActorKey): string {
    return this.historyPrefix + actor;
  }

  /** Both keys of an actor, from a bounded cache: the oldest entry goes when it is full. */
  actorKeys(actor: ActorKey): ActorKeys {
    let keys = this.recentActors.get(actor);
    if (!keys) {
      if (this.recentActors.size >= RECENT_ACTORS_PER_SHARD)
        this.recentActors.delete(this.recentActors.keys().next().value!);
      keys = { actor: this.actor(actor), history: this.history(actor) };
      this.recentActors.set(actor, keys);
    }
    return keys;
  }
}

/** Keys that belong to no shard: membership and notifications. */
export function globalKeys(prefix: string) {
  return {
    nodes: `${prefix}:nodes`,
    inboxChannel: `${prefix}:inbox-notify`,
  };
}
