import { StoreError } from "./errors.js";
import type { ScriptArg } from "./redis-scripts.js";
import type { ShardKeys } from "./shard-keys.js";
import type { CommitOptions, CommitOutcome, CommitRecord, Fence } from "./types.js";

/** The outcome codes `commit.lua` returns, indexed by code. */
const OUTCOME_BY_CODE: readonly CommitOutcome[] = ["ok", "duplicate", "conflict", "stale"];

/** KEYS[1..11] of `commit.lua`, in its header's order; per-record keys follow them. */
export function commitFixedKeys(keys: ShardKeys): string[] {
  return [
    keys.lease,
    keys.actors,
    keys.timers,
    keys.timerFire,
    keys.timerData,
    keys.inbox,
    keys.inboxData,
    keys.outbox,
    keys.outboxData,
    keys.outboxSeq,
    keys.seen,
  ];
}

/**
 * Lays a batch out as `commit.lua` reads it (see its header): the shard's
 * fixed keys, then the actor and history key of each record; a flat ARGV with
 * per-record counts in front of each record's lists, so the script needs no
 * decoder and Buffers travel as they are.
 */
export function encodeCommit(
  keys: ShardKeys,
  fence: Fence,
  records: CommitRecord[],
  options: CommitOptions,
): { keys: string[]; args: ScriptArg[] } {
  const scriptKeys = commitFixedKeys(keys);
  const args: ScriptArg[] = [
    fence.owner,
    fence.epoch,
    options.nowMs,
    options.nowMs - options.dedupeWindowMs,
    records.length,
  ];
  for (const record of records) {
    scriptKeys.push(keys.actor(record.actor), keys.history(record.actor));
    const ack = record.ack;
    args.push(
      record.actor,
      record.expectedVersion,
      record.snapshot ? 1 : 0,
      record.snapshot ?? "",
      record.history,
      record.historyCap,
      record.dedupeId === null ? 0 : 1,
      record.dedupeId ?? "",
      ack?.kind ?? "",
      ack === null ? "" : ack.kind === "inbox" ? ack.eventId : ack.timerKey,
      ack?.kind === "timer" ? ack.fireId : "",
      record.timerCancels.length,
      record.timerAdds.length,
      record.outbox.length,
    );
    for (const timerKey of record.timerCancels) args.push(timerKey);
    for (const timer of record.timerAdds)
      args.push(timer.timerKey, timer.fireId, timer.dueAtMs, timer.payload);
    for (const effect of record.outbox) args.push(effect.effectId, effect.payload);
  }
  return { keys: scriptKeys, args };
}

export function decodeCommitOutcomes(codes: number[]): CommitOutcome[] {
  return codes.map((code) => {
    const outcome = OUTCOME_BY_CODE[code];
    if (!outcome) throw new StoreError("SCRIPT", `commit script returned unknown outcome code ${code}`);
    return outcome;
  });
}
