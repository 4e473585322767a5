/**
 * Reports (`job.status`, `job.ended`) kept until the server acknowledges them
 * by frame id, in the order they were made, so a dropped socket loses none.
 */
import type { ReportFrame } from "./frames.js";

interface PendingReport {
  frame: ReportFrame;
  /** Undefined until it went out on a socket. */
  lastSentAtMs: number | undefined;
}

export class ReportOutbox {
  private readonly pending = new Map<string, PendingReport>();

  get size(): number {
    return this.pending.size;
  }

  add(frame: ReportFrame): void {
    this.pending.set(frame.id, { frame, lastSentAtMs: undefined });
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  get(id: string): ReportFrame | undefined {
    return this.pending.get(id)?.frame;
  }

  /** Forgets the report; false when it was not pending (a late or repeated ack). */
  remove(id: string): boolean {
    return this.pending.delete(id);
  }

  /** Forgets every report about one attempt of a job; answers how many. */
  removeJob(jobId: string, attempt: number): number {
    let removed = 0;
    for (const [id, { frame }] of this.pending) {
      if (frame.jobId === jobId && frame.attempt === attempt) removed += this.pending.delete(id) ? 1 : 0;
    }
    return removed;
  }

  hasEnded(jobId: string, attempt: number): boolean {
    for (const { frame } of this.pending.values()) {
      if (frame.type === "job.ended" && frame.jobId === jobId && frame.attempt === attempt) return true;
    }
    return false;
  }

  markSent(id: string, nowMs: number): void {
    const report = this.pending.get(id);
    if (report) report.lastSentAtMs = nowMs;
  }

  /** Every pending report, oldest first: all of them go out again on a new session. */
  all(): ReportFrame[] {
    return [...this.pending.values()].map((report) => report.frame);
  }

  /** Reports that went out at least `ageMs` ago (or never) and are still unacknowledged. */
  unackedFor(ageMs: number, nowMs: number): ReportFrame[] {
    return [...this.pending.values()]
      .filter((report) => report.lastSentAtMs === undefined || nowMs - report.lastSentAtMs >= ageMs)
      .map((report) => report.frame);
  }
}
