/**
 * Simulated time. The runtime, the dispatcher and every simulated component
 * schedule on it; nothing happens between events, and time moves only when
 * the harness calls `advanceTo`. Timers and scheduled simulation events share
 * one queue, ordered by (time, sequence number).
 *
 * Events fall on a grid of `resolutionMs` (rounded up): what happens in the
 * same tick is committed together, in group commits, which is most of what
 * makes a large grid affordable to simulate. A second is finer than anything
 * PanDA itself records.
 */
import type { Clock, TimerHandle } from "../runtime/clock.js";
import { EventQueue, type QueuedEvent } from "./event-queue.js";

export class VirtualClock implements Clock {
  private currentMs: number;
  private readonly queue = new EventQueue();

  constructor(
    startMs: number,
    private readonly resolutionMs = 1,
  ) {
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    return this.at(this.currentMs + Math.max(0, delayMs), callback) as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    this.queue.cancel(handle as unknown as QueuedEvent);
  }

  /** Schedules a callback at an absolute virtual time (never in the past). */
  at(atMs: number, callback: () => void): QueuedEvent {
    const tick = Math.ceil(atMs / this.resolutionMs) * this.resolutionMs;
    return this.queue.push(Math.max(tick, this.currentMs), callback);
  }

  cancel(event: QueuedEvent): void {
    this.queue.cancel(event);
  }

  /** When the next event is due, or null when nothing is scheduled. */
  nextDueMs(): number | null {
    return this.queue.peekTimeMs();
  }

  get pending(): number {
    return this.queue.size;
  }

  /** Moves time to `atMs` (never backwards). */
  advanceTo(atMs: number): void {
    if (atMs > this.currentMs) this.currentMs = atMs;
  }

  /**
   * Runs every event due at the current time, in order; events they schedule
   * for the same instant run too. Returns how many ran.
   */
  runDue(): number {
    let ran = 0;
    for (;;) {
      const event = this.queue.popDue(this.currentMs);
      if (!event) return ran;
      event.run();
      ran++;
    }
  }
}
