/**
 * A group commit as `commit.lua` takes it: every batch and record packed into
 * one binary argument the script cuts up (a Redis argument costs the client a
 * header, a length and a copy, thousands per call), and its outcome codes read back.
 */
import { StoreError } from "./errors.js";
import type { ScriptArg } from "./redis-scripts.js";
import type { ShardKeys } from "./shard-keys.js";
import type { CommitOptions, CommitOutcome, CommitRecord, Fence } from "./types.js";

/** The outcome codes `commit.lua` returns, indexed by code. */
const OUTCOME_BY_CODE: readonly CommitOutcome[] = ["ok", "duplicate", "conflict", "stale", "split"];

/** Bytes of the batch part of the header before its two length-prefixed strings: epoch, first seq, seen score and flag, counts. */
const BATCH_FIXED_SIZE = 8 + 8 + 8 + 1 + 4 + 4 + 4;

/** What the store knows of the shard under the batch's fence, which spares the script commands. */
export interface CommitLayout {
  /** Scores the batch's new effects (`firstSeq`, `firstSeq + 1`, ...); 0 leaves them to the shard's outbox seq counter. */
  firstSeq?: number;
  /** The score of the dedupe ids the batch adds (`CommitNumbers`); by default the batch's `nowMs`. */
  seenScore?: number | null;
  /**
   * True only if no seen id of the shard holds `seenScore`: the script then
   * checks and adds the dedupe ids with one ZADD NX. By default they are
   * checked first.
   */
  seenByAdd?: boolean;
  /** Index keys already in the shard's set of index names: the script adds only the others. */
  registeredIndexes?: ReadonlySet<string>;
}
/** Bytes of one record's header, `commit.lua`'s struct format `<ddBBI4I4I4I4I4I4I4I4I4I4`. */
const RECORD_HEADER_SIZE = 58;

/**
 * Lays a batch out as `commit.lua` reads it (see its header): the lease, each
 * record's actor and history key, then only the shard keys the batch needs;
 * every number in one binary header, and after it only the fields each
 * record has. Each argument costs ioredis and Redis time, so a plain
 * transition sends its two keys, snapshot and history, and little else.
 */
export function encodeCommit(
  keys: ShardKeys,
  fence: Fence,
  records: CommitRecord[],
  options: CommitOptions,
  { firstSeq = 0, seenScore, seenByAdd = false, registeredIndexes }: CommitLayout = {},
): { keys: string[]; args: ScriptArg[] } {
  const scriptKeys = [keys.lease];
  const horizon = options.trimSeen === false ? "" : String(options.nowMs - options.dedupeWindowMs);
  const header = Buffer.allocUnsafe(
    BATCH_FIXED_SIZE +
      4 * 2 +
      Buffer.byteLength(fence.owner) +
      horizon.length +
      records.length * RECORD_HEADER_SIZE,
  );
  // The index zsets the batch changes, numbered in the order the records name them, those to register first.
  const named = new Set<string>();
  for (const record of records) for (const op of record.index) named.add(op.key);
  const indexNumbers = new Map<string, number>();
  for (const key of named) if (!registeredIndexes?.has(key)) indexNumbers.set(key, indexNumbers.size + 1);
  const toRegister = indexNumbers.size;
  for (const key of named) if (!indexNumbers.has(key)) indexNumbers.set(key, indexNumbers.size + 1);
  let offset = header.writeDoubleLE(fence.epoch, 0);
  offset = header.writeDoubleLE(firstSeq, offset);
  offset = header.writeDoubleLE(seenScore ?? options.nowMs, offset);
  offset = header.writeUInt8(seenByAdd ? 1 : 0, offset);
  offset = header.writeUInt32LE(records.length, offset);
  offset = header.writeUInt32LE(indexNumbers.size, offset);
  offset = header.writeUInt32LE(toRegister, offset);
  for (const text of [fence.owner, horizon]) offset = writeString(header, text, offset);

  const args: ScriptArg[] = [header];
  const needs = { index: false, timers: false, inbox: false, outbox: false, seen: false, counters: false };
  for (const record of records) {
    const actorKeys = keys.actorKeys(record.actor);
    scriptKeys.push(actorKeys.actor, actorKeys.history);
    const {
      snapshot,
      constants,
      history,
      dedupeIds,
      acks,
      timerCancels,
      timerAdds,
      outbox,
      counters,
      index,
    } = record;
    const creates = Boolean(snapshot) && record.expectedVersion === 0;
    let inboxAcks = 0;
    for (const ack of acks) if (ack.kind === "inbox") inboxAcks++;
    const timerAcks = acks.length - inboxAcks;
    offset = header.writeDoubleLE(record.expectedVersion, offset);
    offset = header.writeDoubleLE(record.historyCap, offset);
    offset = header.writeUInt8(snapshot ? 1 : 0, offset);
    offset = header.writeUInt8(snapshot && constants ? 1 : 0, offset);
    offset = header.writeUInt32LE(snapshot ? record.versionStep : 0, offset);
    offset = header.writeUInt32LE(history.length, offset);
    offset = header.writeUInt32LE(dedupeIds.length, offset);
    offset = header.writeUInt32LE(inboxAcks, offset);
    offset = header.writeUInt32LE(timerAcks, offset);
    offset = header.writeUInt32LE(timerCancels.length, offset);
    offset = header.writeUInt32LE(timerAdds.length, offset);
    offset = header.writeUInt32LE(outbox.length, offset);
    offset = header.writeUInt32LE(counters.length, offset);
    offset = header.writeUInt32LE(index.length, offset);

    if (snapshot) args.push(snapshot);
    if (snapshot && constants) args.push(constants);
    for (const entry of history) args.push(entry);
    // Only a creating commit adds the actor to the shard's index, so only it needs the name.
    if (creates) args.push(record.actor);
    for (const id of dedupeIds) args.push(id);
    for (const ack of acks) if (ack.kind === "inbox") args.push(ack.eventId);
    for (const ack of acks) if (ack.kind === "timer") args.push(ack.timerKey, ack.fireId);
    for (const timerKey of timerCancels) args.push(timerKey);
    for (const timer of timerAdds) args.push(timer.timerKey, timer.fireId, timer.dueAtMs, timer.payload);
    for (const effect of outbox) args.push(effect.effectId, effect.payload);
    for (const counter of counters) args.push(counter.name, counter.delta);
    for (const op of index)
      args.push(indexNumbers.get(op.key)!, op.member, op.score === null ? "" : op.score);

    needs.index ||= creates;
    needs.timers ||= timerAcks > 0 || timerCancels.length > 0 || timerAdds.length > 0;
    needs.inbox ||= inboxAcks > 0;
    needs.outbox ||= outbox.length > 0;
    needs.seen ||= dedupeIds.length > 0;
    needs.counters ||= counters.length > 0;
  }
  if (needs.index) scriptKeys.push(keys.actors);
  if (needs.timers) scriptKeys.push(keys.timers, keys.timerFire, keys.timerData);
  if (needs.inbox) scriptKeys.push(keys.inbox, keys.inboxData);
  if (needs.outbox) {
    scriptKeys.push(keys.outbox, keys.outboxData);
    if (firstSeq === 0) scriptKeys.push(keys.outboxSeq);
  }
  if (needs.seen) scriptKeys.push(keys.seen);
  if (needs.counters) scriptKeys.push(keys.counters);
  if (toRegister > 0) scriptKeys.push(keys.indexNames);
  for (const key of indexNumbers.keys()) scriptKeys.push(keys.index(key));
  return { keys: scriptKeys, args };
}

/**
 * One call of `commit.lua` for several shards' batches: the call's header
 * (the batch count, then each batch's key and field counts) and one blob of
 * every batch's fields, each as its length then its bytes (a Redis argument
 * costs ioredis a header, a length and a copy each: one blob costs one);
 * the batches' keys in order.
 */
export function encodeCommitCall(batches: { keys: string[]; args: ScriptArg[] }[]): {
  keys: string[];
  args: ScriptArg[];
} {
  const header = Buffer.allocUnsafe(4 + 8 * batches.length);
  let offset = header.writeUInt32LE(batches.length, 0);
  let keyCount = 0;
  let blobBytes = 0;
  for (const batch of batches) {
    offset = header.writeUInt32LE(batch.keys.length, offset);
    offset = header.writeUInt32LE(batch.args.length, offset);
    keyCount += batch.keys.length;
    for (const arg of batch.args) blobBytes += 4 + byteLengthOf(arg);
  }
  const blob = Buffer.allocUnsafe(blobBytes);
  const keys = new Array<string>(keyCount);
  let k = 0;
  let at = 0;
  for (const batch of batches) {
    for (const key of batch.keys) keys[k++] = key;
    for (const arg of batch.args) at = writeField(blob, arg, at);
  }
  return { keys, args: [header, blob] };
}

function byteLengthOf(arg: ScriptArg): number {
  if (typeof arg === "string") return Buffer.byteLength(arg);
  if (typeof arg === "number") return Buffer.byteLength(String(arg));
  return arg.length;
}

/** A field of the blob: its byte length (uint32 LE), then its bytes. */
function writeField(blob: Buffer, arg: ScriptArg, at: number): number {
  if (typeof arg === "string" || typeof arg === "number") {
    const written = blob.write(String(arg), at + 4);
    blob.writeUInt32LE(written, at);
    return at + 4 + written;
  }
  blob.writeUInt32LE(arg.length, at);
  arg.copy(blob, at + 4);
  return at + 4 + arg.length;
}

/** A struct `I4c0` field: the byte length, then the UTF-8 bytes. */
function writeString(buffer: Buffer, text: string, offset: number): number {
  const length = buffer.write(text, offset + 4);
  buffer.writeUInt32LE(length, offset);
  return offset + 4 + length;
}

/** One batch's reply: its outcome codes, or a negative number for the whole batch (see `scriptErrorFor`). */
export function decodeCommitOutcomes(codes: number[]): CommitOutcome[] {
  return codes.map((code) => {
    const outcome = OUTCOME_BY_CODE[code];
    if (!outcome) throw new StoreError("SCRIPT", `commit script returned unknown outcome code ${code}`);
    return outcome;
  });
}
