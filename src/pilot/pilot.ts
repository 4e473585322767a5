/**
 * The pilot agent: one connection, one or two threads each running at most
 * one job, and the reports it owes the server.
 */
import { mkdir } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import {
  type AckFrame,
  ackedRefs,
  type ProtocolErrorCode,
  type ServerMessage,
  type Thread,
} from "../protocol/messages.js";
import { PilotConnection, type PilotWelcome, pilotSocketUrl } from "./connection.js";
import { FrameIds, makeFrame, type PilotFrameBody, type ReportBody } from "./frames.js";
import { JobRun } from "./job-run.js";
import { messageOf, type PilotLog } from "./log.js";
import type { PilotOptions } from "./options.js";
import { ReportOutbox } from "./outbox.js";
import { measureSlot } from "./resources.js";

/** The process exit code when the server refuses the credential. */
export const EXIT_UNAUTHORIZED = 3;
/** The process exit code when no session opened within `--call-home-timeout`. */
export const EXIT_NO_CALL_HOME = 4;
/** The environment variable the pilot may read its credential from; payloads never see it. */
export const TOKEN_ENV = "PANDA_PILOT_TOKEN";

/** A report unacknowledged this many heartbeat periods after it went out goes out again. */
const RESEND_AFTER_HEARTBEATS = 4;
/** A frame the server dropped unread (over its rate, or its own failure) is sent again after this long. */
const RESEND_DROPPED_AFTER_MS = 1_000;
/** Answers saying the frame was dropped unread: sending it again later may succeed. */
const DROPPED_UNREAD: ReadonlySet<ProtocolErrorCode> = new Set(["RATE_LIMITED", "INTERNAL"]);
/** After a hard stop, how long the pilot waits for the server to take its last reports. */
const HARD_STOP_WAIT_MS = 3_000;
/** Answers to a report that resending cannot change: the report is dropped. */
const FINAL_REFUSALS: ReadonlySet<ProtocolErrorCode> = new Set([
  "NOT_YOUR_JOB",
  "STALE_ATTEMPT",
  "SCHEMA",
  "MALFORMED",
  "TOO_LARGE",
]);

/**
 * `working`: takes jobs. `finishing`: its work is done (primary ended, max
 * jobs, idle timeout); runs out the current jobs, then exits 0. `draining`:
 * the same, asked by the server or a SIGTERM. `stopping`: payloads are being
 * killed and the pilot exits as soon as their reports are out.
 */
type Mode = "working" | "finishing" | "draining" | "stopping";

type ServerFrame = Exclude<ServerMessage, { type: "pilot.welcome" }>;

export class Pilot {
  private readonly ids = new FrameIds();
  private readonly outbox = new ReportOutbox();
  /**
   * What this session's unanswered `pilot.ready` and `pilot.draining` frames
   * said, by frame id: said again if the server drops the frame unread. A
   * lost ready would leave a free thread that the server never offers work.
   */
  private readonly unansweredSayings = new Map<string, () => void>();
  private readonly resendTimers = new Set<NodeJS.Timeout>();
  private readonly threads = new Map<Thread, JobRun | undefined>();
  private readonly connection: PilotConnection;
  private readonly startedAtMs = Date.now();
  private mode: Mode = "working";
  private drainReason = "";
  private primaryJobsDone = 0;
  private heartbeatMs = 30_000;
  private idleTimer: NodeJS.Timeout | undefined;
  private callHomeTimer: NodeJS.Timeout | undefined;
  private hardStopTimer: NodeJS.Timeout | undefined;
  private stopExitCode = 1;
  private exitWith!: (code: number) => void;
  private readonly exited = new Promise<number>((resolve) => {
    this.exitWith = resolve;
  });

  constructor(
    private readonly options: PilotOptions,
    private readonly log: PilotLog,
  ) {
    log.addSecret(options.token);
    this.threads.set("primary", undefined);
    if (options.multitask) this.threads.set("secondary", undefined);
    this.connection = new PilotConnection(
      options.serverUrls.map(pilotSocketUrl),
      options.token,
      this.ids,
      {
        hello: () => this.helloBody(),
        onWelcome: (welcome) => this.onWelcome(welcome),
        onMessage: (message) => this.onMessage(message),
        onHeartbeat: () => this.onHeartbeat(),
        onUnauthorized: (reason) => this.onUnauthorized(reason),
      },
      log,
    );
  }

  /** Runs until the pilot is done; answers the process exit code. */
  async run(): Promise<number> {
    await mkdir(this.options.workdir, { recursive: true });
    this.log.info("pilot starting", {
      server: this.options.serverUrl,
      site: this.options.site,
      multitask: this.options.multitask,
      workdir: this.options.workdir,
    });
    this.connection.start();
    this.armIdleTimer();
    this.armCallHomeTimer();
    const code = await this.exited;
    clearTimeout(this.idleTimer);
    clearTimeout(this.callHomeTimer);
    clearTimeout(this.hardStopTimer);
    for (const timer of this.resendTimers) clearTimeout(timer);
    await this.connection.close();
    this.log.info("pilot exiting", { code, primaryJobsDone: this.primaryJobsDone });
    return code;
  }

  /** First SIGTERM drains; a second SIGTERM, or SIGINT, kills the payloads and exits. */
  handleSignal(signal: NodeJS.Signals): void {
    if (signal === "SIGTERM" && this.mode !== "draining" && this.mode !== "stopping") {
      this.drain(`received ${signal}`, true);
      return;
    }
    this.stopNow(signal);
  }

  /**
   * Kills every payload's process group synchronously, for a pilot that is
   * crashing: payloads lead their own groups and would otherwise outlive it.
   */
  killPayloadsNow(): void {
    for (const run of this.runs()) run.killPayloadNow();
  }

  private async helloBody() {
    const slot = await measureSlot(this.options.workdir, this.options.walltimeSec, this.startedAtMs);
    return { site: this.options.site, multitask: this.options.multitask, ...slot };
  }

  /** A batch slot that cannot reach the server ends soon, so its factory sees the failure and throttles. */
  private armCallHomeTimer(): void {
    const timeoutSec = this.options.callHomeTimeoutSec;
    if (timeoutSec === undefined) return;
    this.callHomeTimer = setTimeout(() => {
      this.log.error("could not call home: no session with the server opened", {
        server: this.options.serverUrl,
        callHomeTimeoutSec: timeoutSec,
      });
      this.exitWith(EXIT_NO_CALL_HOME);
    }, timeoutSec * 1000);
  }

  private onWelcome(welcome: PilotWelcome): void {
    clearTimeout(this.callHomeTimer);
    // A new session: what the last one left unanswered is said again below.
    this.unansweredSayings.clear();
    this.heartbeatMs = welcome.heartbeatMs;
    for (const frame of this.outbox.all()) this.sendReport(frame);
    this.reconcile(welcome.jobs);
    if (this.mode === "draining") this.sayDraining();
    for (const thread of this.threads.keys()) this.announceReady(thread);
  }

  /**
   * After a resume the server's list of this pilot's jobs is the truth: a job
   * it no longer lists was given up (killed here, not reported); a job it
   * lists that the pilot does not hold never reached it and is reported failed.
   */
  private reconcile(serverJobs: PilotWelcome["jobs"]): void {
    for (const run of this.runs()) {
      if (!serverJobs.some((job) => run.is(job.jobId, job.attempt))) {
        run.stop("abandoned", "the server no longer lists the job for this pilot");
      }
    }
    for (const job of serverJobs) {
      const held = this.runs().some((run) => run.is(job.jobId, job.attempt));
      if (held || this.outbox.hasEnded(job.jobId, job.attempt)) continue;
      this.log.warn("server lists a job this pilot never received", {
        jobId: job.jobId,
        attempt: job.attempt,
      });
      this.reportNotRun(job.jobId, job.attempt, "the job never reached the pilot");
    }
  }

  private onMessage(message: ServerFrame): void {
    switch (message.type) {
      case "job.push":
        this.onPush(message);
        return;
      case "job.kill":
        this.onKill(message);
        return;
      case "pilot.drain":
        this.drain(`server: ${message.reason}`, false);
        return;
      case "ack":
        this.onAck(message);
        return;
      case "error":
        this.onErrorFrame(message);
        return;
    }
  }

  private onPush(push: Extract<ServerFrame, { type: "job.push" }>): void {
    const { job, thread } = push;
    const fields = { jobId: job.jobId, attempt: job.attempt, thread };
    if (this.runs().some((run) => run.is(job.jobId, job.attempt))) {
      // The same push again (say, after a resume): it runs already; say so again.
      this.send({ type: "job.ack", jobId: job.jobId, attempt: job.attempt });
      return;
    }
    const refusal = this.refusalOf(thread);
    if (refusal !== undefined) {
      this.log.warn("job refused", { ...fields, reason: refusal });
      this.reportNotRun(job.jobId, job.attempt, `refused by the pilot: ${refusal}`);
      return;
    }
    clearTimeout(this.idleTimer);
    this.send({ type: "job.ack", jobId: job.jobId, attempt: job.attempt });
    this.log.info("job received", { ...fields, command: job.command[0] });
    const run = new JobRun(job, thread, {
      workdir: this.options.workdir,
      log: this.log,
      report: (body) => this.report(body),
      headersFor: (url) => this.storageHeaders(url),
      hiddenEnv: [TOKEN_ENV],
    });
    this.threads.set(thread, run);
    void run.done.then(() => this.onJobDone(run));
  }

  private refusalOf(thread: Thread): string | undefined {
    if (!this.threads.has(thread)) return `no ${thread} thread on this pilot`;
    if (this.threads.get(thread) !== undefined) return `the ${thread} thread is busy`;
    if (this.mode !== "working") return `the pilot is ${this.mode}`;
    return undefined;
  }

  private onKill(kill: Extract<ServerFrame, { type: "job.kill" }>): void {
    // Whatever was still unacknowledged about the job no longer matters to the server.
    this.outbox.removeJob(kill.jobId, kill.attempt);
    const run = this.runs().find((candidate) => candidate.is(kill.jobId, kill.attempt));
    if (run === undefined) {
      this.log.info("kill for a job not running here ignored", { jobId: kill.jobId, attempt: kill.attempt });
      this.finishIfDone();
      return;
    }
    this.log.info("killing job", { jobId: kill.jobId, attempt: kill.attempt, reason: kill.reason });
    run.stop("cancelled", kill.reason);
  }

  /** A version 2 ack names every report the server took in one turn: each is forgotten once. */
  private onAck(ack: AckFrame): void {
    let forgot = false;
    for (const ref of ackedRefs(ack)) {
      this.unansweredSayings.delete(ref);
      forgot = this.outbox.remove(ref) || forgot;
    }
    if (forgot) this.finishIfDone();
  }

  private onErrorFrame(error: Extract<ServerFrame, { type: "error" }>): void {
    this.log.warn("server error frame", { code: error.code, message: error.message, ref: error.ref });
    if (error.ref !== undefined && DROPPED_UNREAD.has(error.code)) {
      this.resendDropped(error.ref);
      return;
    }
    if (error.ref !== undefined) this.unansweredSayings.delete(error.ref);
    if (error.ref !== undefined && this.outbox.has(error.ref) && FINAL_REFUSALS.has(error.code)) {
      this.outbox.remove(error.ref);
      this.finishIfDone();
    }
  }

  private onJobDone(run: JobRun): void {
    this.threads.set(run.thread, undefined);
    if (run.thread === "primary") {
      this.primaryJobsDone += 1;
      const maxReached = this.options.maxJobs !== undefined && this.primaryJobsDone >= this.options.maxJobs;
      if (this.mode === "working" && (!this.options.stay || maxReached)) {
        this.log.info("primary work done; finishing", { primaryJobsDone: this.primaryJobsDone });
        this.mode = "finishing";
      }
    }
    this.announceReady(run.thread);
    this.armIdleTimer();
    this.finishIfDone();
  }

  private onHeartbeat(): void {
    for (const run of this.runs())
      this.send({ type: "job.heartbeat", jobId: run.jobId, attempt: run.attempt });
    const resendAfterMs = RESEND_AFTER_HEARTBEATS * this.heartbeatMs;
    for (const frame of this.outbox.unackedFor(resendAfterMs, Date.now())) this.sendReport(frame);
  }

  private onUnauthorized(reason: string): void {
    this.log.error("the server refused the credential", { reason });
    // Nothing can be reported any more: payloads go, unreported.
    for (const run of this.runs()) run.stop("abandoned", "the pilot lost its credential");
    void Promise.all(this.runs().map((run) => run.done)).then(() => this.exitWith(EXIT_UNAUTHORIZED));
  }

  private drain(reason: string, announce: boolean): void {
    if (this.mode === "draining" || this.mode === "stopping") return;
    this.log.info("draining", { reason });
    this.mode = "draining";
    this.drainReason = reason;
    clearTimeout(this.idleTimer);
    if (announce) this.sayDraining();
    this.finishIfDone();
  }

  private stopNow(signal: NodeJS.Signals): void {
    if (this.mode === "stopping") return;
    this.log.warn("stopping now: killing payloads", { signal });
    this.mode = "stopping";
    this.stopExitCode = 128 + (osConstants.signals[signal] ?? 0);
    clearTimeout(this.idleTimer);
    for (const run of this.runs()) run.stop("pilotStopped", `received ${signal}`);
    this.hardStopTimer = setTimeout(() => {
      this.log.warn("exiting with reports unacknowledged", { unacked: this.outbox.size });
      this.exitWith(this.stopExitCode);
    }, HARD_STOP_WAIT_MS);
    this.finishIfDone();
  }

  /** Exits once the pilot takes no more work, runs nothing and owes the server no report. */
  private finishIfDone(): void {
    if (this.mode === "working" || this.runs().length > 0 || this.outbox.size > 0) return;
    this.exitWith(this.mode === "stopping" ? this.stopExitCode : 0);
  }

  /** Late binding: a thread asks for work only when it is free and the pilot still takes work. */
  private announceReady(thread: Thread): void {
    if (this.mode !== "working" || this.threads.get(thread) !== undefined) return;
    const id = this.send({ type: "pilot.ready", thread });
    if (id !== undefined) this.unansweredSayings.set(id, () => this.announceReady(thread));
  }

  private sayDraining(): void {
    const id = this.send({ type: "pilot.draining", reason: this.drainReason });
    if (id !== undefined)
      this.unansweredSayings.set(id, () => {
        if (this.mode === "draining") this.sayDraining();
      });
  }

  /**
   * The server dropped a frame unread: a report goes out again, and a ready
   * or draining is said again if it still holds, after a pause (the rate
   * limit refills meanwhile). Anything else (a heartbeat) the next one replaces.
   */
  private resendDropped(ref: string): void {
    const saying = this.unansweredSayings.get(ref);
    this.unansweredSayings.delete(ref);
    if (saying === undefined && !this.outbox.has(ref)) return;
    const timer = setTimeout(() => {
      this.resendTimers.delete(timer);
      const report = this.outbox.get(ref);
      if (report !== undefined) this.sendReport(report);
      else saying?.();
    }, RESEND_DROPPED_AFTER_MS);
    this.resendTimers.add(timer);
  }

  private armIdleTimer(): void {
    const idleTimeoutSec = this.options.idleTimeoutSec;
    clearTimeout(this.idleTimer);
    if (idleTimeoutSec === undefined || this.mode !== "working" || this.runs().length > 0) return;
    this.idleTimer = setTimeout(() => {
      this.log.info("idle timeout: no work arrived", { idleTimeoutSec });
      this.mode = "finishing";
      this.finishIfDone();
    }, idleTimeoutSec * 1000);
  }

  /** A job the pilot will not run ends failed (`pilot`), so the server can give it to another. */
  private reportNotRun(jobId: string, attempt: number, errorMessage: string): void {
    this.report({
      type: "job.ended",
      jobId,
      attempt,
      outcome: "failed",
      exitCode: null,
      errorClass: "pilot",
      errorMessage,
    });
  }

  private report(body: ReportBody): void {
    const frame = makeFrame(this.ids, body);
    this.outbox.add(frame);
    this.sendReport(frame);
  }

  private sendReport(frame: ReturnType<ReportOutbox["all"]>[number]): void {
    if (this.connection.send(frame)) this.outbox.markSent(frame.id, Date.now());
  }

  /**
   * Fire and forget: heartbeats, acks, readiness are not kept when no
   * session is open. Answers the frame's id when it went out (or waits for
   * the pace).
   */
  private send(body: PilotFrameBody): string | undefined {
    const frame = makeFrame(this.ids, body);
    return this.connection.send(frame) ? frame.id : undefined;
  }

  /** The credential goes to the server's own origin only, never to a third-party storage. */
  private storageHeaders(url: string): Record<string, string> {
    try {
      const origin = httpOrigin(url);
      if (this.options.serverUrls.some((server) => httpOrigin(server) === origin)) {
        return { authorization: `Bearer ${this.options.token}` };
      }
    } catch (err) {
      this.log.warn("bad storage URL", { url, error: messageOf(err) });
    }
    return {};
  }

  private runs(): JobRun[] {
    return [...this.threads.values()].filter((run): run is JobRun => run !== undefined);
  }
}

/** The origin of a URL with ws(s) read as http(s), which name the same server. */
function httpOrigin(text: string): string {
  const url = new URL(text);
  if (url.protocol === "ws:") url.protocol = "http:";
  else if (url.protocol === "wss:") url.protocol = "https:";
  return url.origin;
}
