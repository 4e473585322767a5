/**
 * What a durable store's log and snapshot hold: each call that changes state
 * as one op (its name and arguments, msgpack), the snapshot's payload, and
 * applying an op to the in-memory store and index, the same whether the call
 * is made now or replayed at open.
 */
import { Packr } from "msgpackr";
import type { MemoryQueueIndex, MemoryQueueIndexState } from "./memory-queue-index.js";
import type { MemoryStore, MemoryStoreState } from "./memory-store.js";
import type { ActorKey, CommitOptions, CommitRecord, Fence, IndexEntry } from "./types.js";

export const SNAPSHOT_FORMAT = 1;

/** One call that changes state, as it is logged. */
export type Op =
  | ["acquireLease", number, string, number, number]
  | ["renewLease", number, Fence, number, number]
  | ["releaseLease", number, Fence]
  | ["heartbeatNode", string, number, number]
  | ["removeNode", string]
  | ["commit", number, Fence, CommitRecord[], CommitOptions]
  | ["importActor", number, Fence, ActorKey, number, Buffer]
  | ["appendInbox", number, { eventId: string; payload: Buffer }[]]
  /** Effect ids by shard, as entries: a Map would come back from msgpack as an object. */
  | ["ackOutbox", [number, readonly string[]][]]
  | [
      "rebuildIndexes",
      number,
      Fence,
      {
        version: number;
        indexes: [string, IndexEntry[]][];
        counters: [string, number][];
        counterPrefixes: string[];
      },
    ]
  | ["index.add", string, string, number]
  | ["index.addIfBelow", string, string, number, number]
  | ["index.remove", string, string]
  | ["index.removeIfScoreBelow", string, string, number]
  | ["index.popMin", string, number]
  | ["index.putRecord", string, string, number, string]
  | ["index.trimRecords", string, number];

export interface SnapshotPayload {
  format: number;
  /** The log that follows this snapshot. */
  generation: number;
  store: MemoryStoreState;
  index: MemoryQueueIndexState;
}

/** Plain msgpack like the rest of the project's bytes; decoded buffers are copies, not views of a whole file. */
export const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  copyBuffers: true,
});

export function applyOp(store: MemoryStore, index: MemoryQueueIndex, op: Op): Promise<unknown> {
  switch (op[0]) {
    case "acquireLease":
      return store.acquireLease(op[1], op[2], op[3], op[4]);
    case "renewLease":
      return store.renewLease(op[1], op[2], op[3], op[4]);
    case "releaseLease":
      return store.releaseLease(op[1], op[2]);
    case "heartbeatNode":
      return store.heartbeatNode(op[1], op[2], op[3]);
    case "removeNode":
      return store.removeNode(op[1]);
    case "commit":
      return store.commit(op[1], op[2], op[3], op[4]);
    case "importActor":
      return store.importActor(op[1], op[2], op[3], op[4], op[5]);
    case "appendInbox":
      return store.appendInbox(op[1], op[2]);
    case "ackOutbox":
      return store.ackOutbox(new Map(op[1]));
    case "rebuildIndexes":
      return store.rebuildIndexes(op[1], op[2], {
        ...op[3],
        indexes: new Map(op[3].indexes),
        counters: new Map(op[3].counters),
      });
    case "index.add":
      return index.add(op[1], op[2], op[3]);
    case "index.addIfBelow":
      return index.addIfBelow(op[1], op[2], op[3], op[4]);
    case "index.remove":
      return index.remove(op[1], op[2]);
    case "index.removeIfScoreBelow":
      return index.removeIfScoreBelow(op[1], op[2], op[3]);
    case "index.popMin":
      return index.popMin(op[1], op[2]);
    case "index.putRecord":
      return index.putRecord(op[1], op[2], op[3], op[4]);
    case "index.trimRecords":
      return index.trimRecords(op[1], op[2]);
  }
}
