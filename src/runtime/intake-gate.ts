/**
 * Admission control for new work. Effects that create work (a task's jobs)
 * are committed to the outbox like any other, so they are durable already;
 * the gate only decides when they are delivered. It lets them through at the
 * rate the node keeps up with, so a burst of submissions queues here instead
 * of in front of the work in flight: dispatch, pilot reports and kills are
 * never held.
 *
 * The rate adapts each tick (additive increase, multiplicative decrease) to
 * three signals of overload: how late the tick fired (event-loop delay), how
 * many actors of this node wait for a commit (commit lag), and, while the
 * loop is saturated, a queue of admitted work longer than `maxQueueSeconds`
 * of what the node served from it lately (see `watchQueue`). Busy alone is no
 * overload: a node working through a big batch is fully busy and should be.
 * But a busy node that admits work faster than it serves it spends CPU on
 * work that only waits, taken from the work in flight: then the rate drops
 * at once below what was served, not by one cut a tick, since the growth of
 * the healthy ticks in between would hold it far above. Real time, not the
 * runtime's clock: it measures this process, so a simulation on a virtual
 * clock runs without it.
 */
import { type EventLoopUtilization, performance } from "node:perf_hooks";

export interface IntakeGateOptions {
  /** Releases per second when the gate opens, and its bounds. */
  initialPerSecond: number;
  minPerSecond: number;
  maxPerSecond: number;
  tickMs: number;
  /** A tick firing this much later than asked means the loop is overloaded. */
  maxLagMs: number;
  /** Actors with events waiting for a commit on this node above which it is overloaded. */
  maxBacklog: number;
  /**
   * Event-loop utilization over the last second at or above which the loop
   * counts as saturated. Below 1: a node at capacity still idles while its
   * commits are on their way to Redis (about a fifth of the time on the
   * benchmark's machine).
   */
  saturatedUtilization: number;
  /** A saturated node whose queued work would take longer than this to serve, at its recent pace, is overloaded. */
  maxQueueSeconds: number;
  /** Queued work below which it is never too long: a queue must not run dry. */
  minQueuedWork: number;
}

export const DEFAULT_INTAKE_GATE: IntakeGateOptions = {
  initialPerSecond: 2_000,
  minPerSecond: 20,
  maxPerSecond: 50_000,
  tickMs: 50,
  maxLagMs: 30,
  maxBacklog: 2_000,
  saturatedUtilization: 0.75,
  maxQueueSeconds: 2,
  minQueuedWork: 500,
};

/** Growth per healthy tick and the cut per overloaded one. */
const INCREASE_FACTOR = 1.08;
const INCREASE_MIN_PER_SECOND = 10;
const DECREASE_FACTOR = 0.7;
/** A queue too long: the share of the last second's serving pace the rate drops to, so the queue shrinks. */
const SERVED_SHARE = 0.9;

export interface IntakeGateStats {
  queued: number;
  perSecond: number;
  released: number;
  overloadedTicks: number;
}

export class IntakeGate {
  private readonly options: IntakeGateOptions;
  private waiting: { release: () => void; drop: () => void }[] = [];
  private head = 0;
  private perSecond: number;
  private credit = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastTickMs = 0;
  private released = 0;
  private overloadedTicks = 0;
  private queuedWork: (() => number) | null = null;
  /** The last second's ticks: when, released so far, queued work, loop utilization counters. */
  private window: { atMs: number; released: number; queued: number; loop: EventLoopUtilization }[] = [];

  constructor(
    options: Partial<IntakeGateOptions>,
    /** Actors of this node with events waiting for a commit. */
    private readonly backlog: () => number,
    /** The loop's cumulative idle and active time (a test gives its own). */
    private readonly loopTime: () => EventLoopUtilization = () => performance.eventLoopUtilization(),
  ) {
    this.options = { ...DEFAULT_INTAKE_GATE, ...options };
    this.perSecond = this.options.initialPerSecond;
  }

  /**
   * How much admitted work waits to be served (a grid: the jobs activated on
   * this node's shards). Served = released - growth of this, over a second.
   */
  watchQueue(probe: () => number): void {
    this.queuedWork = probe;
  }

  /** Deliveries waiting for their turn. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  stats(): IntakeGateStats {
    return {
      queued: this.queued,
      perSecond: Math.round(this.perSecond),
      released: this.released,
      overloadedTicks: this.overloadedTicks,
    };
  }

  /** Queues a delivery: `release` runs when its turn comes, or `drop` if the gate is cleared first. */
  hold(release: () => void, drop: () => void = () => {}): void {
    this.waiting.push({ release, drop });
    if (!this.timer) this.start();
  }

  /**
   * Drops what waits (it stays in the outbox, for whoever hosts its shard
   * next, or this node's next start) and stops ticking.
   */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const dropped = this.waiting.slice(this.head);
    this.waiting = [];
    this.head = 0;
    this.credit = 0;
    for (const entry of dropped) entry.drop();
  }

  private start(): void {
    // After an idle spell the last overload says little: start from the opening rate again.
    this.perSecond = Math.max(this.perSecond, this.options.initialPerSecond);
    this.lastTickMs = performance.now();
    // The first delivery goes at once, so an idle node adds no delay to a lone one; what
    // follows in the same turn waits for the ticks.
    this.credit = Math.max(this.credit, 1);
    this.release();
    this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => this.tick(), this.options.tickMs);
    this.timer.unref?.();
  }

  private tick(): void {
    const nowMs = performance.now();
    const elapsedMs = nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;
    const { tickMs, maxLagMs, maxBacklog, minPerSecond, maxPerSecond } = this.options;
    const backlog = this.backlog();
    const servedPerSecond = this.servedIfQueueTooLong(nowMs, backlog);
    const overloaded = elapsedMs - tickMs > maxLagMs || backlog > maxBacklog || servedPerSecond !== null;
    if (overloaded) {
      this.overloadedTicks++;
      this.perSecond = Math.max(minPerSecond, this.perSecond * DECREASE_FACTOR);
      if (servedPerSecond !== null)
        this.perSecond = Math.max(minPerSecond, Math.min(this.perSecond, servedPerSecond * SERVED_SHARE));
    } else {
      this.perSecond = Math.min(
        maxPerSecond,
        Math.max(this.perSecond * INCREASE_FACTOR, this.perSecond + INCREASE_MIN_PER_SECOND),
      );
    }
    // Credit for the time that passed, but never a burst bigger than two ticks' worth.
    const perTick = (this.perSecond * tickMs) / 1000;
    this.credit = Math.min(this.credit + (this.perSecond * elapsedMs) / 1000, Math.max(2 * perTick, 1));
    this.release();
    // Idle once a whole tick passed with nothing left: the next hold starts afresh.
    if (this.queued > 0) this.arm();
    else {
      this.timer = null;
      this.credit = 0;
      this.window = [];
    }
  }

  /**
   * Saturated over the last second, with more queued than `maxQueueSeconds`
   * of what it served: the pace it served at, per second; else null. What
   * waits for a commit (`backlog`) is queued too: admitted work stuck in
   * front of the store is not served.
   */
  private servedIfQueueTooLong(nowMs: number, backlog: number): number | null {
    if (!this.queuedWork) return null;
    const sample = {
      atMs: nowMs,
      released: this.released,
      queued: this.queuedWork() + backlog,
      loop: this.loopTime(),
    };
    this.window.push(sample);
    while (this.window.length > 2 && nowMs - this.window[1]!.atMs >= 1000) this.window.shift();
    const first = this.window[0]!;
    const spanMs = nowMs - first.atMs;
    if (spanMs < 500 || sample.queued <= this.options.minQueuedWork) return null;
    const { utilization } = performance.eventLoopUtilization(sample.loop, first.loop);
    if (utilization < this.options.saturatedUtilization) return null;
    const served = sample.released - first.released - (sample.queued - first.queued);
    const servedPerSecond = Math.max(0, (served * 1000) / spanMs);
    return sample.queued > this.options.maxQueueSeconds * servedPerSecond ? servedPerSecond : null;
  }

  private release(): void {
    while (this.credit >= 1 && this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      this.head++;
      this.credit--;
      this.released++;
      next.release();
    }
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}
