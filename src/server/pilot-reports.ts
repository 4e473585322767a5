/**
 * A pilot's reports on its jobs (`job.status`, `job.heartbeat`, `job.ended`)
 * as the jobs' events. The job actor decides whether a report applies; this
 * module makes a resent report a duplicate (the frame id is the event id)
 * and turns a refusal (or an ack of a job the session was not pushed) into
 * an answer the pilot can act on: `NOT_YOUR_JOB`, or `STALE_ATTEMPT` with a
 * `job.kill`. A failure that says nothing about the report (the job's shard
 * moved to another node under the send, a commit lost to conflicts) is not
 * a refusal: the report is sent again, and if that fails too the pilot is
 * answered with an error it resends on, never one it drops the report for.
 */
import { refs } from "../actors/shared/names.js";
import { GatewayRefusal, type PilotReport, type PilotSession } from "../gateway/handlers.js";
import { isRuntimeError, type RuntimeErrorCode } from "../runtime/errors.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";

/** The event id of a report: the frame's, so that a resent frame is a duplicate. */
export function reportEventId(session: PilotSession, message: { jobId: string; id: string }): string {
  return `pilot:${session.pilotId}:${message.jobId}:${message.id}`;
}

/** A report's event: the members every report carries. */
export type ReportEvent = { type: string; pilotId: string; attempt: number; atMs: number };

/**
 * A `job.ended` frame as the job's `pilot.ended` event, member by member
 * (spreading optional members costs V8 microseconds a report).
 */
export function endedEvent(
  session: PilotSession,
  message: Extract<PilotReport, { type: "job.ended" }>,
  atMs: number,
) {
  const event: Record<string, unknown> & ReportEvent = {
    type: "pilot.ended",
    exitCode: message.exitCode ?? (message.outcome === "finished" ? 0 : -1),
    outputs: message.outputs,
    log: message.log ?? null,
    pilotId: session.pilotId,
    attempt: message.attempt,
    atMs,
  };
  if (message.outcome !== "finished") {
    event.errorClass = message.errorClass ?? (message.outcome === "cancelled" ? "killed" : "pilot");
  }
  if (message.errorCode !== undefined) event.errorCode = message.errorCode;
  if (message.errorMessage) event.errorMessage = message.errorMessage;
  if (message.sandbox) event.sandbox = message.sandbox;
  return event;
}

/**
 * Failures of the delivery, not of the report: a shard taken by another node
 * (a lease lost in a failover), version conflicts. Sent again, the report
 * goes to the shard's new owner (its inbox) or commits.
 */
const TRANSIENT: ReadonlySet<RuntimeErrorCode> = new Set(["SHARD_LOST", "CONFLICT"]);
const SEND_ATTEMPTS = 3;

export class PilotReports {
  constructor(private readonly grid: Grid) {}

  private async send(
    session: PilotSession,
    message: Extract<PilotReport, { jobId: string }>,
    event: ReportEvent,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.grid.runtime.send(refs.job(message.jobId), event, {
          eventId: reportEventId(session, message),
          cause: `pilot:${session.pilotId}`,
          // Built here from a frame the gateway validated.
          trusted: true,
        });
        return;
      } catch (err) {
        if (attempt >= SEND_ATTEMPTS || !isRuntimeError(err) || !TRANSIENT.has(err.code)) throw err;
      }
    }
  }

  /**
   * Applies a pilot report to its job, once (the frame id makes resends
   * duplicates). A refusal is explained: another pilot's job, or a stale
   * attempt, which is also told to stop.
   */
  async report(
    session: PilotSession,
    message: Extract<PilotReport, { jobId: string }>,
    event: ReportEvent,
  ): Promise<void> {
    try {
      await this.send(session, message, event);
    } catch (err) {
      // Not the job's answer: the pilot is told to resend (the gateway's INTERNAL), not that its report is refused.
      if (!isRuntimeError(err) || TRANSIENT.has(err.code) || err.code === "STOPPED") throw err;
      const job = await this.checkOwnership(session, message.jobId, message.attempt);
      if (message.type === "job.ended" && job.status === "done") return; // its end is already known: acknowledge
      if (job.status === "done") {
        this.pushKill(session, message.jobId, message.attempt, `job is ${job.state}`);
        throw new GatewayRefusal("STALE_ATTEMPT", `job ${message.jobId} is ${job.state}`);
      }
      throw new GatewayRefusal("STALE_ATTEMPT", `job ${message.jobId} in ${job.state} refused ${event.type}`);
    }
  }

  /** The job, if it is dispatched to this pilot at this attempt; else the refusal (and, for a stale attempt, a kill). */
  async checkOwnership(session: PilotSession, jobId: string, attempt: number) {
    const job = await readContext(this.grid.ctx, "job", jobId);
    if (!job || job.context.pilot?.pilotId !== session.pilotId) {
      throw new GatewayRefusal("NOT_YOUR_JOB", `job ${jobId} is not dispatched to pilot ${session.pilotId}`);
    }
    if (job.context.attempt !== attempt) {
      this.pushKill(session, jobId, attempt, `attempt ${attempt} is not current`);
      throw new GatewayRefusal(
        "STALE_ATTEMPT",
        `job ${jobId} is at attempt ${job.context.attempt}, not ${attempt}`,
      );
    }
    return job;
  }

  private pushKill(session: PilotSession, jobId: string, attempt: number, reason: string): void {
    session.push({ type: "job.kill", jobId, attempt, reason });
  }
}
