/**
 * Reads a shard's durable inbox (events sent by nodes that do not own the
 * shard) into its mailboxes, page by page from a cursor; each entry is
 * handed in once until its commit acknowledges it or it is released.
 */
import type { Store } from "../store/types.js";
import type { Delivery } from "./delivery.js";
import type { Logger } from "./logger.js";
import { decodeInboxPayload } from "./records.js";

const INBOX_PAGE = 512;

export interface InboxDrainDeps {
  shard: number;
  store: Store;
  log: Logger;
  admit(delivery: Delivery): void;
}

export class InboxDrain {
  private cursor = 0;
  private draining: Promise<void> | null = null;
  /** New entries were announced while a drain ran: it reads once more. */
  private dirty = false;
  /** Entries handed in and not yet committed or released. */
  private readonly pending = new Set<string>();
  private stopped = false;

  constructor(private readonly deps: InboxDrainDeps) {}

  get busy(): boolean {
    return this.draining !== null;
  }

  /** Reads what is new (or, `fromStart`, the whole inbox again); one drain runs at a time. */
  drain(fromStart: boolean): Promise<void> {
    if (fromStart) this.cursor = 0;
    if (this.draining) {
      this.dirty = true;
      return this.draining;
    }
    this.draining = this.readAll()
      .catch((err: unknown) => {
        this.deps.log.warn({ shard: this.deps.shard, err: (err as Error).message }, "inbox read failed");
      })
      .finally(() => {
        this.draining = null;
      });
    return this.draining;
  }

  /** The entry was committed or given up: a later read may hand it in again. */
  release(eventId: string): void {
    this.pending.delete(eventId);
  }

  stop(): void {
    this.stopped = true;
  }

  private async readAll(): Promise<void> {
    const { shard, store, log } = this.deps;
    do {
      this.dirty = false;
      for (;;) {
        if (this.stopped) return;
        const entries = await store.readInbox(shard, this.cursor, INBOX_PAGE);
        for (const entry of entries) {
          this.cursor = Math.max(this.cursor, entry.seq);
          if (this.pending.has(entry.eventId)) continue;
          let payload: ReturnType<typeof decodeInboxPayload>;
          try {
            payload = decodeInboxPayload(entry.payload);
          } catch (err) {
            log.error(
              { shard, eventId: entry.eventId, err: (err as Error).message },
              "unreadable inbox entry skipped",
            );
            continue;
          }
          this.pending.add(entry.eventId);
          this.deps.admit({
            actor: payload.a,
            event: payload.e,
            eventId: entry.eventId,
            cause: payload.c,
            source: { kind: "inbox", eventId: entry.eventId },
            attempts: 0,
          });
        }
        if (entries.length < INBOX_PAGE) break;
      }
    } while (this.dirty);
  }
}
