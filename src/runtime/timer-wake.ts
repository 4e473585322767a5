/**
 * A shard's durable timers on this node: one clock timer armed for the
 * earliest due one, and each due timer handed in as a delivery once, until
 * the commit that consumes it (or a sweep) lets it be handed in again.
 */
import type { Store } from "../store/types.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { Delivery } from "./delivery.js";
import type { Logger } from "./logger.js";
import { decodeTimerPayload } from "./records.js";

const TIMER_PAGE = 512;
/** How soon a failed read of the due timers is tried again. */
const RETRY_READ_MS = 100;

export interface TimerWakeDeps {
  shard: number;
  store: Store;
  clock: Clock;
  log: Logger;
  admit(delivery: Delivery): void;
}

export class TimerWake {
  private wake: { atMs: number; handle: TimerHandle } | null = null;
  /** Fire ids handed in and not yet committed or released. */
  private readonly pending = new Set<string>();
  private stopped = false;

  constructor(private readonly deps: TimerWakeDeps) {}

  /** Asks the store for the next due timer and arms the wake for it. */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    let nextMs: number | null;
    try {
      nextMs = await this.deps.store.nextTimerDueMs(this.deps.shard);
    } catch (err) {
      this.deps.log.warn({ shard: this.deps.shard, err: (err as Error).message }, "timer read failed");
      return;
    }
    if (nextMs !== null) this.arm(nextMs);
  }

  /** Wakes at `atMs` unless a wake is armed for then or earlier already. */
  arm(atMs: number): void {
    if (this.stopped) return;
    if (this.wake && this.wake.atMs <= atMs) return;
    if (this.wake) this.deps.clock.clearTimer(this.wake.handle);
    const delayMs = Math.max(0, atMs - this.deps.clock.nowMs());
    const handle = this.deps.clock.setTimer(() => {
      this.wake = null;
      void this.fireDue();
    }, delayMs);
    this.wake = { atMs, handle };
  }

  /** The fire was committed or given up: a later read may hand it in again. */
  release(fireId: string): void {
    this.pending.delete(fireId);
  }

  stop(): void {
    this.stopped = true;
    if (this.wake) this.deps.clock.clearTimer(this.wake.handle);
    this.wake = null;
  }

  private async fireDue(): Promise<void> {
    if (this.stopped) return;
    const { shard, store, clock, log } = this.deps;
    const nowMs = clock.nowMs();
    let due: Awaited<ReturnType<Store["dueTimers"]>>;
    try {
      due = await store.dueTimers(shard, nowMs, TIMER_PAGE);
    } catch (err) {
      log.warn({ shard, err: (err as Error).message }, "timer read failed");
      this.arm(nowMs + RETRY_READ_MS);
      return;
    }
    let fresh = 0;
    for (const timer of due) {
      if (this.pending.has(timer.fireId)) continue;
      let payload: ReturnType<typeof decodeTimerPayload>;
      try {
        payload = decodeTimerPayload(timer.payload);
      } catch (err) {
        log.error({ shard, timer: timer.timerKey, err: (err as Error).message }, "unreadable timer skipped");
        continue;
      }
      fresh++;
      this.pending.add(timer.fireId);
      this.deps.admit({
        actor: payload.a,
        event: payload.e,
        eventId: timer.fireId,
        cause: "timer",
        source: { kind: "timer", timerKey: timer.timerKey, fireId: timer.fireId },
        attempts: 0,
      });
    }
    // Timers already in flight re-arm the wake when their commit lands; only look again if this page was full of new ones.
    if (fresh > 0 && due.length === TIMER_PAGE) this.arm(nowMs);
    else if (fresh === 0) await this.armAfter(nowMs);
  }

  /** Arms the wake for the next timer that is not already being delivered. */
  private async armAfter(nowMs: number): Promise<void> {
    const nextMs = await this.deps.store.nextTimerDueMs(this.deps.shard).catch(() => null);
    if (nextMs !== null && nextMs > nowMs) this.arm(nextMs);
  }
}
