import type { ActorKey } from "./types.js";

/**
 * The one key builder. Every key of a shard carries the `{sNNN}` hash tag so
 * that all keys one commit touches hash to the same Redis Cluster slot.
 */
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
  private readonly base: string;

  constructor(prefix: string, shard: number) {
    this.base = `${prefix}:{s${String(shard).padStart(3, "0")}}`;
    this.lease = `${this.base}:lease`;
    this.actors = `${this.base}:actors`;
    this.timers = `${this.base}:timers`;
    this.timerFire = `${this.base}:timer-fire`;
    this.timerData = `${this.base}:timer-data`;
    this.inbox = `${this.base}:inbox`;
    this.inboxData = `${this.base}:inbox-data`;
    this.inboxSeq = `${this.base}:inbox-seq`;
    this.outbox = `${this.base}:outbox`;
    this.outboxData = `${this.base}:outbox-data`;
    this.outboxSeq = `${this.base}:outbox-seq`;
    this.seen = `${this.base}:seen`;
  }

  /** Prefix of per-actor keys; the Lua commit script appends the actor key. */
  get actorPrefix(): string {
    return `${this.base}:actor:`;
  }

  get historyPrefix(): string {
    return `${this.base}:history:`;
  }

  actor(actor: ActorKey): string {
    return this.actorPrefix + actor;
  }

  history(actor: ActorKey): string {
    return this.historyPrefix + actor;
  }
}

/** Keys that belong to no shard: membership and notifications. */
export function globalKeys(prefix: string) {
  return {
    nodes: `${prefix}:nodes`,
    inboxChannel: `${prefix}:inbox-notify`,
  };
}
