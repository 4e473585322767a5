/**
 * The invariants a simulation run checks after every settle (one job per
 * pilot, live pilots, conservation of jobs, one job per thread) and, at its
 * end, the jobs the tracker saw against the task actors' own counts: a breach
 * stops the run with the offending actor's committed history.
 */
import type { TaskContext } from "../actors/task/schema.js";
import type { Runtime } from "../runtime/runtime.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";
import type { JobTracker } from "./job-tracker.js";
import { ON_PILOT_STATES } from "./job-tracker.js";
import { formatDurationMs } from "./units.js";

/** The invariants a run checks throughout; any breach stops it. */
export const INVARIANTS = {
  oneJobOnePilot: "no job runs on two pilots at once",
  livePilot: "every job bound to a pilot has a live pilot that holds it",
  conservation: "jobs are conserved: submitted = finished + failed + cancelled + closed + live",
  oneJobPerThread: "no pilot thread holds two jobs",
} as const;
export type InvariantName = keyof typeof INVARIANTS;

export interface Violation {
  invariant: InvariantName;
  atMs: number;
  /** The actor at fault, whose history is printed. */
  actor: { kind: "job" | "task"; id: string } | null;
  detail: string;
}

/** A failed run: the breach, and the offending actor's committed history. */
export class InvariantViolationError extends Error {
  override readonly name = "InvariantViolationError";
  constructor(
    readonly violation: Violation,
    readonly history: string,
  ) {
    super(
      `invariant violated at ${formatDurationMs(violation.atMs)} of simulated time: ${INVARIANTS[violation.invariant]}\n` +
        `  ${violation.detail}\n${history}`,
    );
  }
}

/** The offending actor's state and transitions, oldest first, as an operator reads them. */
export async function historyOf(
  runtime: Runtime,
  actor: Violation["actor"],
  startMs: number,
): Promise<string> {
  if (!actor) return "";
  const view = await runtime.inspect(actor, 200).catch(() => null);
  if (!view) return `  ${actor.kind}/${actor.id}: no such actor\n`;
  const lines = [`  ${actor.kind}/${actor.id} is ${view.state} (version ${view.version}); history:`];
  for (const entry of view.history) {
    const event = entry.event as { type: string; pilotId?: string; attempt?: number; thread?: string };
    const who = event.pilotId ? ` pilot=${event.pilotId}${event.thread ? `/${event.thread}` : ""}` : "";
    const refused = entry.refused ? `  REFUSED ${entry.refused.code}` : "";
    lines.push(
      `    +${formatDurationMs(entry.at - startMs).padEnd(8)} v${entry.v} ${event.type}${who}: ${entry.from ?? "(new)"} -> ${entry.to} [${entry.cause}]${refused}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function invariantOfRule(rule: string): InvariantName {
  if (rule === "one job per thread") return "oneJobPerThread";
  if (rule === "live pilot") return "livePilot";
  return "conservation";
}

interface HeldJob {
  pilotId: string;
  thread: string;
}

/**
 * The pilot side of the invariants: which simulated pilot thread executes
 * which job, which pilots are alive, and when the lost ones died. Checked
 * against the job actors' view (the tracker) after every drain, so a breach
 * is caught at the virtual instant it happens.
 */
export class InvariantMonitor {
  private readonly held = new Map<string, HeldJob>();
  /** The jobs each pilot executes (the keys of `held` by pilot), so a lost pilot's are found without a scan. */
  private readonly heldByPilot = new Map<string, Set<string>>();
  /** Logical job -> the attempt a live pilot executes. */
  private readonly heldLogical = new Map<string, string>();
  private readonly livePilots = new Set<string>();
  /** Lost pilots and when they died: their jobs may stay bound until the watchdog fires. */
  private readonly deadPilots = new Map<string, number>();
  private first: Violation | null = null;
  checks = 0;

  constructor(
    private readonly tracker: JobTracker,
    private readonly nowMs: () => number,
    /** How long a dead pilot's job may stay bound: the job's watchdog plus a margin. */
    private readonly graceMs: number,
  ) {}

  get violation(): Violation | null {
    return this.first;
  }

  fail(violation: Omit<Violation, "atMs">): void {
    this.first ??= { ...violation, atMs: this.nowMs() };
  }

  pilotStarted(pilotId: string): void {
    this.livePilots.add(pilotId);
  }

  /** A pilot exits normally: it must hold nothing, and no job may think it runs there. */
  pilotExited(pilotId: string): void {
    this.livePilots.delete(pilotId);
    for (const jobId of this.tracker.jobsOnPilot(pilotId)) {
      this.fail({
        invariant: "livePilot",
        actor: { kind: "job", id: jobId },
        detail: `pilot ${pilotId} exited while job ${jobId} is bound to it`,
      });
    }
  }

  /** A pilot's node died: its jobs stay bound until their heartbeat watchdog fails them. */
  pilotDied(pilotId: string): void {
    this.livePilots.delete(pilotId);
    this.deadPilots.set(pilotId, this.nowMs());
    for (const jobId of [...(this.heldByPilot.get(pilotId) ?? [])]) this.release(jobId);
  }

  /** A pilot thread starts executing a job it was pushed. */
  take(pilotId: string, thread: string, jobId: string): void {
    this.checks++;
    const holder = this.held.get(jobId);
    if (holder) {
      this.fail({
        invariant: "oneJobOnePilot",
        actor: { kind: "job", id: jobId },
        detail: `job ${jobId} pushed to ${pilotId}/${thread} while ${holder.pilotId}/${holder.thread} runs it`,
      });
    }
    const logicalId = jobId.slice(0, jobId.lastIndexOf("."));
    const other = this.heldLogical.get(logicalId);
    if (other && other !== jobId) {
      this.fail({
        invariant: "oneJobOnePilot",
        actor: { kind: "job", id: jobId },
        detail: `attempt ${jobId} pushed to ${pilotId} while attempt ${other} of the same job still runs on ${this.held.get(other)?.pilotId}`,
      });
    }
    if (holder) this.heldByPilot.get(holder.pilotId)?.delete(jobId);
    this.held.set(jobId, { pilotId, thread });
    this.heldLogical.set(logicalId, jobId);
    let onPilot = this.heldByPilot.get(pilotId);
    if (!onPilot) {
      onPilot = new Set();
      this.heldByPilot.set(pilotId, onPilot);
    }
    onPilot.add(jobId);
  }

  /** A job was pushed to a thread that is still running another. */
  threadBusy(pilotId: string, thread: string, jobId: string, runningJobId: string): void {
    this.fail({
      invariant: "oneJobPerThread",
      actor: { kind: "job", id: jobId },
      detail: `job ${jobId} pushed to ${pilotId}/${thread}, which still runs ${runningJobId}`,
    });
  }

  /** A pilot thread runs the job (it was pushed there and not yet given up). */
  holds(jobId: string): boolean {
    return this.held.has(jobId);
  }

  release(jobId: string): void {
    const held = this.held.get(jobId);
    if (!held) return;
    this.held.delete(jobId);
    const onPilot = this.heldByPilot.get(held.pilotId);
    onPilot?.delete(jobId);
    if (onPilot?.size === 0) this.heldByPilot.delete(held.pilotId);
    const logicalId = jobId.slice(0, jobId.lastIndexOf("."));
    if (this.heldLogical.get(logicalId) === jobId) this.heldLogical.delete(logicalId);
  }

  /** After every drain: each job that the actors bound to a pilot since the last look is really there. */
  afterDrain(): void {
    for (const v of this.tracker.violations.splice(0)) {
      this.fail({
        invariant: invariantOfRule(v.rule),
        actor: { kind: "job", id: v.jobId },
        detail: v.detail,
      });
    }
    const entered = this.tracker.enteredOnPilot;
    for (const jobId of entered) {
      const record = this.tracker.attempt(jobId);
      if (!record || !ON_PILOT_STATES.has(record.state) || !record.pilotId) continue;
      this.checkBound(jobId, record.pilotId);
    }
    entered.length = 0;
  }

  private checkBound(jobId: string, pilotId: string): void {
    this.checks++;
    if (this.deadPilots.has(pilotId)) return;
    if (!this.livePilots.has(pilotId)) {
      this.fail({
        invariant: "livePilot",
        actor: { kind: "job", id: jobId },
        detail: `job ${jobId} is bound to pilot ${pilotId}, which is not alive`,
      });
      return;
    }
    if (this.held.get(jobId)?.pilotId !== pilotId) {
      this.fail({
        invariant: "livePilot",
        actor: { kind: "job", id: jobId },
        detail: `job ${jobId} is bound to pilot ${pilotId}, which does not run it`,
      });
    }
  }

  /**
   * Jobs still bound to pilots that died longer ago than the grace: the
   * heartbeat watchdog should have failed them. Called periodically.
   */
  checkDeadPilots(): void {
    const nowMs = this.nowMs();
    for (const [pilotId, diedAtMs] of this.deadPilots) {
      if (nowMs - diedAtMs <= this.graceMs) continue;
      for (const jobId of this.tracker.jobsOnPilot(pilotId)) {
        this.fail({
          invariant: "livePilot",
          actor: { kind: "job", id: jobId },
          detail: `job ${jobId} is still bound to pilot ${pilotId}, lost ${formatDurationMs(nowMs - diedAtMs)} ago (grace ${formatDurationMs(this.graceMs)})`,
        });
      }
      this.deadPilots.delete(pilotId);
    }
  }

  /**
   * submitted = finished + failed + cancelled + closed + live, counting
   * logical jobs (a retried attempt is the same job).
   */
  checkConservation(submittedJobs: number): void {
    this.checks++;
    const t = this.tracker;
    const live = t.logicalLive.production + t.logicalLive.analysis;
    const ended =
      t.endedCount("finished") + t.endedCount("failed") + t.endedCount("cancelled") + t.endedCount("closed");
    if (submittedJobs !== ended + live) {
      this.fail({
        invariant: "conservation",
        actor: null,
        detail: `submitted ${submittedJobs} jobs, but finished ${t.endedCount("finished")} + failed ${t.endedCount("failed")} + cancelled ${t.endedCount("cancelled")} + closed ${t.endedCount("closed")} + live ${live} = ${ended + live}`,
      });
    }
  }
}

/**
 * At the end, the tracker's view against the task actors' own counts: every
 * task's logical jobs add up, and all tasks together match what the
 * tracker saw end.
 */
export async function crossCheckTasks(
  grid: Grid,
  tracker: JobTracker,
  monitor: InvariantMonitor,
): Promise<void> {
  const totals = { finished: 0, failed: 0, cancelled: 0, closed: 0, live: 0 };
  for (const taskId of tracker.tasks.keys()) {
    const task = await readContext(grid.ctx, "task", taskId);
    if (!task) {
      monitor.fail({
        invariant: "conservation",
        actor: { kind: "task", id: taskId },
        detail: `task ${taskId} was submitted but does not exist`,
      });
      return;
    }
    const c = (task.context as TaskContext).counts;
    if (c.finished + c.failed + c.cancelled + c.closed + c.live !== task.context.jobCount) {
      monitor.fail({
        invariant: "conservation",
        actor: { kind: "task", id: taskId },
        detail: `task ${taskId} has ${task.context.jobCount} jobs but counts ${JSON.stringify(c)}`,
      });
      return;
    }
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += c[key];
  }
  const seen = {
    finished: tracker.endedCount("finished"),
    failed: tracker.endedCount("failed"),
    cancelled: tracker.endedCount("cancelled"),
    closed: tracker.endedCount("closed"),
    live: tracker.logicalLive.production + tracker.logicalLive.analysis,
  };
  if (JSON.stringify(seen) !== JSON.stringify(totals)) {
    monitor.fail({
      invariant: "conservation",
      actor: null,
      detail: `the task actors count ${JSON.stringify(totals)}, the job actors' transitions ${JSON.stringify(seen)}`,
    });
  }
}
