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
 * the healthy ticks in between would hold it far above. And while the loop
 * stays saturated, a healthy tick grows the rate to at most a little above
 * the pace served over the last second: growth of 8% a tick alone would
 * multiply it almost five times a second, release a flood before the queue
 * signal can see it, and the cuts that follow would starve the node (a swing
 * between 20/s and 6,000/s every 2-3 s, measured). Real time, not the
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
/** A saturated loop: the most a healthy tick grows the rate to, over the last second's serving pace. */
const SERVED_GROWTH = 1.2;
/** Event-loop lag on a saturated loop cuts the rate, but not below this share of the pace served. */
const SERVED_FLOOR_SHARE = 0.5;

/**
 * What admission control watches of the work it let in. Served is counted,
 * not inferred from the queue's growth: admitted work reaches the queue
 * late (created, loaded, brokered, committed), so after a burst the queue
 * grows faster than anything was released, and an inferred pace reads zero.
 */
export interface AdmittedWork {
  /** Admitted work waiting to be served now. */
  waiting(): number;
  /** Admitted work served so far: only ever grows. */
  served(): number;
}

interface RecentPace {
  servedPerSecond: number;
  saturated: boolean;
  queued: number;
}

/**
 * Deliveries admission control holds as one entry: `count` of them, each let
 * through by a call of `release` when its turn comes (in order, `count` calls
 * at most); `drop` once if the gate is cleared before the last. A task's jobs
 * are one entry, however many: holding them costs nothing per job.
 */
export interface HeldDelivery {
  readonly count: number;
  release(): void;
  drop(): void;
}

export interface IntakeGateStats {
  queued: number;
  perSecond: number;
  released: number;
  overloadedTicks: number;
  /** Admitted work served so far, by what `watchQueue` watches; null when nothing is watched. */
  served: number | null;
}

export class IntakeGate {
  private readonly options: IntakeGateOptions;
  private waiting: HeldDelivery[] = [];
  private head = 0;
  /** Deliveries of the head entry already let through. */
  private headReleased = 0;
  /** Deliveries held: the entries' counts, less what the head let through. */
  private held = 0;
  private perSecond: number;
  private credit = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastTickMs = 0;
  /** When credit was last added for the time that passed. */
  private lastRefillMs = 0;
  private releases = 0;
  private overloadedTicks = 0;
  private queue: AdmittedWork | null = null;
  /** The last second's ticks: when, work served so far, queued work, loop utilization counters. */
  private window: { atMs: number; served: number; queued: number; loop: EventLoopUtilization }[] = [];

  constructor(
    options: Partial<IntakeGateOptions>,
    /** Actors of this node with events waiting for a commit. */
    private readonly backlog: () => number,
    /** The loop's cumulative idle and active time (a test gives its own). */
    private readonly loopTime: () => EventLoopUtilization = () => performance.eventLoopUtilization(),
    /** This process's clock in ms (a test gives its own). */
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.options = { ...DEFAULT_INTAKE_GATE, ...options };
    this.perSecond = this.options.initialPerSecond;
  }

  /**
   * Admitted work and how fast it is served (a grid: the jobs activated on
   * this node's shards, and how many left that state).
   */
  watchQueue(queue: AdmittedWork): void {
    this.queue = queue;
  }

  /** Deliveries let through so far. */
  get released(): number {
    return this.releases;
  }

  /** Deliveries waiting for their turn. */
  get queued(): number {
    return this.held;
  }

  stats(): IntakeGateStats {
    return {
      queued: this.queued,
      perSecond: Math.round(this.perSecond),
      released: this.releases,
      overloadedTicks: this.overloadedTicks,
      served: this.queue?.served() ?? null,
    };
  }

  /**
   * Queues deliveries until their turn. The gate keeps the object it is given
   * and nothing else: a backlog of held work costs its entries' own size.
   */
  hold(delivery: HeldDelivery): void {
    if (delivery.count <= 0) return;
    this.waiting.push(delivery);
    this.held += delivery.count;
    if (!this.timer) {
      this.start();
      return;
    }
    // Between ticks, credit for the time since the last refill lets work through at once at the
    // rate set: waiting for the next tick is no part of admission control (it added up to a tick
    // to every paced submission's way to its pilot on an idle node).
    this.refill(this.nowMs());
    this.release();
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
    this.headReleased = 0;
    this.held = 0;
    this.credit = 0;
    for (const entry of dropped) entry.drop();
  }

  private start(): void {
    // After an idle spell neither the last overload nor the growth of idle ticks says anything:
    // start from the opening rate again. A rate grown while idle would let a flood in before
    // the pace of the new work can be judged (the window needs half a second).
    this.perSecond = this.options.initialPerSecond;
    this.lastTickMs = this.nowMs();
    this.lastRefillMs = this.lastTickMs;
    // The first delivery goes at once, so an idle node adds no delay to a lone one; what
    // follows waits for the credit the rate gives as time passes (see `hold`).
    this.credit = Math.max(this.credit, 1);
    this.release();
    this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => this.tick(), this.options.tickMs);
    this.timer.unref?.();
  }

  private tick(): void {
    const nowMs = this.nowMs();
    const elapsedMs = nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;
    const { tickMs, maxLagMs, maxBacklog, minPerSecond, maxPerSecond } = this.options;
    const backlog = this.backlog();
    const pace = this.recentPace(nowMs, backlog);
    const queueTooLong = pace !== null && this.queueTooLong(pace);
    const lagging = elapsedMs - tickMs > maxLagMs || backlog > maxBacklog;
    if (queueTooLong) {
      this.overloadedTicks++;
      // The pace served is what the node sustains with work waiting: a further cut each tick
      // while the queue drains would take the rate to the floor and starve the node.
      this.perSecond = Math.max(minPerSecond, Math.min(this.perSecond, pace.servedPerSecond * SERVED_SHARE));
    } else if (lagging) {
      this.overloadedTicks++;
      const floor = pace?.saturated ? pace.servedPerSecond * SERVED_FLOOR_SHARE : 0;
      this.perSecond = Math.max(
        minPerSecond,
        Math.min(this.perSecond, Math.max(floor, this.perSecond * DECREASE_FACTOR)),
      );
    } else {
      let grown = Math.max(this.perSecond * INCREASE_FACTOR, this.perSecond + INCREASE_MIN_PER_SECOND);
      if (pace?.saturated)
        grown = Math.min(grown, Math.max(this.perSecond, pace.servedPerSecond * SERVED_GROWTH));
      this.perSecond = Math.min(maxPerSecond, grown);
    }
    this.refill(nowMs);
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
   * Over the last second (at least half of one): the pace admitted work was
   * served at, whether the loop was saturated, and how much waits now. What
   * waits for a commit (`backlog`) is queued too: admitted work stuck in
   * front of the store is not served. Null without a queue to watch or a
   * long enough window.
   */
  private recentPace(nowMs: number, backlog: number): RecentPace | null {
    if (!this.queue) return null;
    const sample = {
      atMs: nowMs,
      served: this.queue.served(),
      queued: this.queue.waiting() + backlog,
      loop: this.loopTime(),
    };
    this.window.push(sample);
    while (this.window.length > 2 && nowMs - this.window[1]!.atMs >= 1000) this.window.shift();
    const first = this.window[0]!;
    const spanMs = nowMs - first.atMs;
    if (spanMs < 500) return null;
    const { utilization } = performance.eventLoopUtilization(sample.loop, first.loop);
    return {
      servedPerSecond: ((sample.served - first.served) * 1000) / spanMs,
      saturated: utilization >= this.options.saturatedUtilization,
      queued: sample.queued,
    };
  }

  /** Saturated, with more queued than `maxQueueSeconds` of the pace served. */
  private queueTooLong({ servedPerSecond, saturated, queued }: RecentPace): boolean {
    if (!saturated || queued <= this.options.minQueuedWork) return false;
    return queued > this.options.maxQueueSeconds * servedPerSecond;
  }

  /** Credit for the time that passed at the rate set, but never a burst bigger than two ticks' worth. */
  private refill(nowMs: number): void {
    const perTick = (this.perSecond * this.options.tickMs) / 1000;
    this.credit = Math.min(
      this.credit + (this.perSecond * (nowMs - this.lastRefillMs)) / 1000,
      Math.max(2 * perTick, 1),
    );
    this.lastRefillMs = nowMs;
  }

  private release(): void {
    while (this.credit >= 1 && this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      // The entry moves on before its release runs: a release may hold more (behind it).
      if (++this.headReleased >= next.count) {
        this.head++;
        this.headReleased = 0;
      }
      this.held--;
      this.credit--;
      this.releases++;
      next.release();
    }
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}
