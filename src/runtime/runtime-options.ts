/** What a runtime node is configured with, what it reports, and the defaults. */
import type { Store } from "../store/types.js";
import type { Clock } from "./clock.js";
import { RuntimeError } from "./errors.js";
import type { IntakeGateOptions, IntakeGateStats } from "./intake-gate.js";
import type { KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import type { HistoryEntry } from "./records.js";
import type { ShardHostConfig } from "./shard-host.js";

export interface RuntimeOptions {
  store: Store;
  registry: KindRegistry;
  /** Fixed for the life of a deployment: it decides which shard every actor lives in. */
  shardCount?: number;
  nodeId?: string;
  clock?: Clock;
  log?: Logger;
  leaseMs?: number;
  /** How often leases are renewed and membership checked; well under `leaseMs`. */
  renewEveryMs?: number;
  sweepEveryMs?: number;
  /**
   * The most history entries each actor keeps. 0 keeps none and encodes none:
   * for a simulation, whose store is thrown away at its end (`src/sim/harness.ts`).
   */
  historyCap?: number;
  dedupeWindowMs?: number;
  maxBatchRecords?: number;
  idleEvictMs?: number;
  maxResidentActorsPerShard?: number;
  /** Store calls of grouped commits a node keeps out at once (see `GroupCommitter`); 2 by default. */
  maxCommitsInFlight?: number;
  /**
   * How long delivered effects' acknowledgements gather before one call
   * removes them from the outboxes: each shard they touch costs the call
   * two Redis commands, so the longer, the fewer. An effect stays in flight
   * (no sweep delivers it again) until its acknowledgement is written; a
   * crash meanwhile only has it delivered again, to receivers that drop
   * duplicates. 0 (the default): at the end of the event loop's turn.
   */
  ackOutboxAfterMs?: number;
  /** Take no shards: a client that only sends into the durable inboxes and reads state. */
  clientOnly?: boolean;
  /**
   * Admission control for effects that create work (`lane: "intake"`): their
   * delivery is paced to what this node keeps up with (`IntakeGate`). `false`
   * delivers them at once, as a simulation on a virtual clock must.
   */
  intake?: Partial<IntakeGateOptions> | false;
}

export interface SendOptions {
  /** A stable id makes the send idempotent: a second send with it is dropped as a duplicate. */
  eventId?: string;
  cause?: string;
  /**
   * The event was built by this node's own code from input it validated
   * already (a pilot frame, an API body, a service's decision): the kind's
   * event schema, a check at the trust boundary, is not run again.
   */
  trusted?: boolean;
}

export interface ActorView {
  kind: string;
  id: string;
  version: number;
  state: string;
  value: unknown;
  status: string;
  context: unknown;
  history: HistoryEntry[];
}

export interface RuntimeStats {
  ownedShards: number;
  residentActors: number;
  /** Shard batches committed (each host's group commits). */
  commits: number;
  /** Store calls those took: a node groups every shard's ready batches into one. */
  commitCalls: number;
  committedRecords: number;
  effectsDelivered: number;
  /** Admission control of new work on this node; null when it is off. */
  intake: IntakeGateStats | null;
}

export const RUNTIME_DEFAULTS = {
  shardCount: 64,
  leaseMs: 10_000,
  sweepEveryMs: 5_000,
  historyCap: 200,
  dedupeWindowMs: 3_600_000,
  maxBatchRecords: 512,
  idleEvictMs: 60_000,
  maxResidentActorsPerShard: 20_000,
};

/** How many times a batch retries an event whose record conflicted before it gives up. */
const MAX_COMMIT_ATTEMPTS = 8;

export function shardHostConfigOf(options: RuntimeOptions): ShardHostConfig {
  return {
    historyCap: options.historyCap ?? RUNTIME_DEFAULTS.historyCap,
    dedupeWindowMs: options.dedupeWindowMs ?? RUNTIME_DEFAULTS.dedupeWindowMs,
    maxBatchRecords: options.maxBatchRecords ?? RUNTIME_DEFAULTS.maxBatchRecords,
    maxCommitAttempts: MAX_COMMIT_ATTEMPTS,
    idleEvictMs: options.idleEvictMs ?? RUNTIME_DEFAULTS.idleEvictMs,
    maxResidentActors: options.maxResidentActorsPerShard ?? RUNTIME_DEFAULTS.maxResidentActorsPerShard,
  };
}

/** The shard count decides where every actor lives, for the life of a deployment. */
export function checkShardCount(shardCount: number): void {
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 4096) {
    throw new RuntimeError("BAD_EVENT", `shardCount must be an integer in 1..4096, got ${shardCount}`);
  }
}
