/**
 * A running job's heartbeats that need not be committed yet. A heartbeat's
 * only effect is to move the job's watchdog (`heartbeatTimeoutMs` after the
 * last one), yet committed one by one they were the most frequent transition
 * of a busy grid: every running job, every heartbeat period (30 s by
 * default). A beat that comes while the job's committed one is younger than
 * half its timeout is acknowledged and held here instead; the first beat past
 * that half is committed as before. So the watchdog of a job whose pilot keeps
 * beating never comes near, and one whose pilot falls silent still fires a
 * whole timeout after the last beat heard: before the committed stamp's
 * watchdog could fire (at three quarters of it), the held beat is committed
 * with the time it was heard and how long it was held (`heldMs`), from which
 * the job arms its watchdog.
 *
 * Held beats are this node's memory, not durable. A node that dies takes
 * them along; its jobs' watchdogs then count from their last committed beat,
 * up to half a timeout early, which matters only to a job whose pilot went
 * silent too (a live pilot's next beat commits: it finds the stamp old).
 */
import type { JobContext } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import type { TimerHandle } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import { MinHeap } from "../runtime/min-heap.js";
import type { Runtime } from "../runtime/runtime.js";

/** A pilot's heartbeat for one attempt of a job, as the gateway took it. */
export interface Heartbeat {
  jobId: string;
  pilotId: string;
  attempt: number;
  atMs: number;
  /** The frame's event id: a held beat committed later is still a duplicate of a resend. */
  eventId: string;
}

interface HeldBeat {
  beat: Heartbeat;
  /** The job's committed heartbeat (or entry) time when the beat was held. */
  committedAtMs: number;
  /** When the held beat is committed unless a later one was. */
  dueMs: number;
}

/** The watchdog counts a whole timeout from the committed stamp: a held beat is committed at three quarters. */
const FLUSH_SHARE = 0.75;
const HOLD_SHARE = 0.5;
const BEATING_STATES: ReadonlySet<unknown> = new Set(["starting", "running"]);

export class HeartbeatLedger {
  private readonly held = new Map<string, HeldBeat>();
  /** Held beats by due time; an entry no longer in `held` is skipped when it comes up. */
  private readonly due = new MinHeap<HeldBeat>((entry) => entry.dueMs);
  private wake: { atMs: number; handle: TimerHandle } | null = null;
  private closed = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly log: Logger,
  ) {}

  /** Beats held now. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Takes the beat without a commit when the job is hosted here, beating on
   * this pilot and attempt, and its committed beat is younger than half its
   * timeout. False: the beat is to be committed (or refused) as a report.
   */
  hold(beat: Heartbeat): boolean {
    if (this.closed) return false;
    const job = this.beatingOn(beat);
    const committedAtMs = job?.lastAtMs ?? null;
    if (!job || committedAtMs === null) return false;
    const timeoutMs = job.watchdogs.heartbeatTimeoutMs;
    if (beat.atMs - committedAtMs >= timeoutMs * HOLD_SHARE || beat.atMs < committedAtMs) {
      this.held.delete(beat.jobId);
      return false;
    }
    const held = this.held.get(beat.jobId);
    if (held && held.committedAtMs === committedAtMs) {
      held.beat = beat;
      return true;
    }
    const fresh: HeldBeat = { beat, committedAtMs, dueMs: committedAtMs + timeoutMs * FLUSH_SHARE };
    this.held.set(beat.jobId, fresh);
    this.due.push(fresh);
    this.armFor(fresh.dueMs);
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.wake) this.runtime.clock.clearTimer(this.wake.handle);
    this.wake = null;
    this.held.clear();
    this.due.clear();
  }

  private armFor(atMs: number): void {
    if (this.wake && this.wake.atMs <= atMs) return;
    const clock = this.runtime.clock;
    if (this.wake) clock.clearTimer(this.wake.handle);
    const handle = clock.setTimer(() => {
      this.wake = null;
      this.flushDue();
    }, atMs - clock.nowMs());
    this.wake = { atMs, handle };
  }

  private flushDue(): void {
    if (this.closed) return;
    const nowMs = this.runtime.clock.nowMs();
    for (let next = this.due.peek(); next && next.dueMs <= nowMs; next = this.due.peek()) {
      const entry = this.due.pop()!;
      if (this.held.get(entry.beat.jobId) !== entry) continue;
      this.held.delete(entry.beat.jobId);
      this.commitIfStillDue(entry);
    }
    const next = this.due.peek();
    if (next) this.armFor(next.dueMs);
  }

  /** Commits the held beat unless the job moved on: a later beat committed, or it left the pilot. */
  private commitIfStillDue({ beat, committedAtMs }: HeldBeat): void {
    if (this.beatingOn(beat)?.lastAtMs !== committedAtMs) return;
    const heldMs = Math.max(0, this.runtime.clock.nowMs() - beat.atMs);
    const event = {
      type: "pilot.heartbeat",
      pilotId: beat.pilotId,
      attempt: beat.attempt,
      atMs: beat.atMs,
      heldMs,
    };
    this.runtime
      .send(refs.job(beat.jobId), event, {
        eventId: beat.eventId,
        cause: `pilot:${beat.pilotId}`,
        trusted: true,
      })
      .catch((err: Error) =>
        // Its watchdog then counts from the beat committed before: up to half a timeout early.
        this.log.warn({ jobId: beat.jobId, err: err.message }, "held heartbeat not committed"),
      );
  }

  /** The job as this node hosts it, if it is starting or running on the beat's pilot and attempt. */
  private beatingOn(beat: Heartbeat): JobContext | null {
    const state = this.runtime.residentState(refs.job(beat.jobId));
    if (state?.status !== "active" || !BEATING_STATES.has(state.value)) return null;
    const job = state.context as JobContext;
    return job.pilot?.pilotId === beat.pilotId && job.attempt === beat.attempt ? job : null;
  }
}
