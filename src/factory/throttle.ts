// Throttling of a queue whose pilots fail fast: exponential backoff between submissions, lifted when a pilot succeeds.
import type { QueueThrottle } from "../actors/factory/schema.js";

export interface ThrottlePolicy {
  fastFailSec: number;
  failuresToThrottle: number;
  initialBackoffSec: number;
  maxBackoffSec: number;
}

/** A batch job's end as the throttle judges it. */
export interface EndedPilotJob {
  state: "done" | "failed" | "cancelled" | "lost";
  exitCode: number | null;
  /** When it started running (null if it never did), and when it ended. */
  startedAtMs: number | null;
  endedAtMs: number;
}

const RATE_WINDOW_MS = 60_000;

/**
 * Counts pilot jobs that failed fast (a non-zero exit within `fastFailSec`
 * of starting) in a row. Past `failuresToThrottle` the queue is throttled: it
 * may submit once per backoff, which starts at `initialBackoffSec` and
 * doubles with every further fast failure up to `maxBackoffSec`. The first
 * pilot that succeeds (exit 0, or it ran longer than `fastFailSec`) lifts it.
 * Cancelled and lost jobs say nothing about the site and count neither way.
 */
export class QueueThrottleState {
  private consecutive = 0;
  private throttledSinceMs: number | null = null;
  private reason: string | null = null;
  private nextSubmitAtMs = 0;
  private readonly submissions: number[] = [];

  constructor(private readonly policy: ThrottlePolicy) {}

  get throttled(): boolean {
    return this.throttledSinceMs !== null;
  }

  backoffSec(): number {
    if (!this.throttled) return 0;
    const doublings = this.consecutive - this.policy.failuresToThrottle;
    return Math.min(this.policy.maxBackoffSec, this.policy.initialBackoffSec * 2 ** Math.max(0, doublings));
  }

  recordEnd(job: EndedPilotJob): void {
    if (job.state === "cancelled" || job.state === "lost") return;
    const ranMs = job.startedAtMs === null ? 0 : job.endedAtMs - job.startedAtMs;
    const failedFast = job.exitCode !== 0 && ranMs < this.policy.fastFailSec * 1000;
    if (!failedFast) {
      this.consecutive = 0;
      this.throttledSinceMs = null;
      this.reason = null;
      this.nextSubmitAtMs = 0;
      return;
    }
    this.consecutive += 1;
    if (this.consecutive < this.policy.failuresToThrottle) return;
    const exit = job.exitCode === null ? "no exit code" : `exit ${job.exitCode}`;
    this.reason = `${this.consecutive} pilot jobs in a row failed within ${this.policy.fastFailSec} s (last: ${exit})`;
    if (this.throttledSinceMs === null) this.throttledSinceMs = job.endedAtMs;
    // The next probe waits the longer backoff from this failure on.
    this.nextSubmitAtMs = Math.max(this.nextSubmitAtMs, job.endedAtMs + this.backoffSec() * 1000);
  }

  /**
   * How many of `wanted` submissions may go now: all of them unless
   * throttled; then one probe per backoff, and only once the last probe has
   * ended (`liveJobs` 0), so each backoff starts from what the last probe showed.
   */
  allowed(wanted: number, nowMs: number, liveJobs: number): number {
    if (!this.throttled) return wanted;
    return wanted > 0 && liveJobs === 0 && nowMs >= this.nextSubmitAtMs ? 1 : 0;
  }

  recordSubmission(nowMs: number): void {
    this.submissions.push(nowMs);
    while (this.submissions.length > 0 && this.submissions[0]! <= nowMs - RATE_WINDOW_MS)
      this.submissions.shift();
    if (this.throttled) this.nextSubmitAtMs = nowMs + this.backoffSec() * 1000;
  }

  /** Submissions in the last minute. */
  submissionsPerMin(nowMs: number): number {
    return this.submissions.filter((atMs) => atMs > nowMs - RATE_WINDOW_MS).length;
  }

  /** A restarted factory carries on from its last report: a throttled queue stays throttled. */
  restore(view: QueueThrottle, nowMs: number): void {
    this.consecutive = view.consecutiveFastFailures;
    this.throttledSinceMs = view.throttled ? (view.sinceMs ?? nowMs) : null;
    this.reason = view.throttled ? view.reason : null;
    this.nextSubmitAtMs = view.throttled ? nowMs + view.backoffSec * 1000 : 0;
  }

  view(): QueueThrottle {
    return {
      throttled: this.throttled,
      reason: this.reason,
      sinceMs: this.throttledSinceMs,
      backoffSec: this.backoffSec(),
      consecutiveFastFailures: this.consecutive,
    };
  }
}
