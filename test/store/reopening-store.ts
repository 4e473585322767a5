import { DurableStore } from "../../src/store/durable-store.js";
import type { Store } from "../../src/store/types.js";

/**
 * A `Store` whose every call goes to a `DurableStore` opened afresh on `dir`:
 * the previous one is dropped as a crash would drop it (no compaction, no
 * fsync), every third time closed cleanly instead (compacted into a
 * snapshot), so each answer comes from what the log or the snapshot kept.
 * Leases are not reclaimed on reopening: their holder is the test, alive.
 */
export function reopeningStore(dir: string): Store {
  let current = DurableStore.open({ dir, reclaimLeases: false });
  let reopened = 0;
  let closed = false;
  const inboxListeners = new Set<(shard: number) => void>();
  const forward = (shard: number) => {
    for (const listener of inboxListeners) listener(shard);
  };
  async function reopen(): Promise<DurableStore> {
    if (closed) return current;
    if (++reopened % 3 === 0) await current.close();
    else current.abandon();
    current = DurableStore.open({ dir, reclaimLeases: false });
    // The old store's listeners went with it: the new one forwards to the same ones.
    if (inboxListeners.size > 0) await current.subscribeInbox(forward);
    return current;
  }

  return new Proxy({} as Store, {
    get(_target, property: keyof Store) {
      if (property === "name") return "durable (reopened)";
      if (property === "close")
        return async () => {
          closed = true;
          await current.close();
        };
      if (property === "subscribeInbox")
        return async (listener: (shard: number) => void) => {
          inboxListeners.add(listener);
          await reopen();
          return async () => {
            inboxListeners.delete(listener);
          };
        };
      return async (...args: unknown[]) => {
        const store = await reopen();
        return (store[property] as (...a: unknown[]) => Promise<unknown>).apply(store, args);
      };
    },
  });
}
