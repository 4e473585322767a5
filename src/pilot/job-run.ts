/**
 * One job attempt on one thread, from push to `job.ended`: stage-in, the
 * payload under its walltime, stage-out of outputs and log. `done` resolves
 * once the final report is queued (never rejects).
 */
import { appendFile, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ErrorClass, JobSpec, Thread } from "../protocol/messages.js";
import type { ReportBody } from "./frames.js";
import { messageOf, type PilotLog } from "./log.js";
import { describeExit, Payload, type PayloadExit } from "./payload.js";
import { installSandbox, publishBuild } from "./sandbox.js";
import { type HeadersFor, stageIn, stageOut, uploadAs } from "./stage.js";

/** How long a payload gets between SIGTERM and SIGKILL: a killed job must be gone within a second. */
export const KILL_GRACE_MS = 500;
const MAX_ERROR_MESSAGE_CHARS = 4096;

/**
 * Why a job is stopped from outside: `cancelled` by the server's `job.kill`;
 * `abandoned` because the server no longer counts it as this pilot's (it hears
 * nothing more of it); `pilotStopped` because the pilot itself is going away.
 */
export type StopReason = "cancelled" | "abandoned" | "pilotStopped";

export interface JobRunContext {
  workdir: string;
  log: PilotLog;
  /** Sends a report reliably (kept until the server acknowledges it). */
  report(body: ReportBody): void;
  headersFor: HeadersFor;
  /** The pilot's own environment variables that must not reach a payload (the credential). */
  hiddenEnv: readonly string[];
}

type EndedBody = Extract<ReportBody, { type: "job.ended" }>;
type Ending = Omit<EndedBody, "type" | "jobId" | "attempt">;

const STOPPED = Symbol("stopped");

/** The directory of one attempt; the id is encoded so that it cannot name a path outside the workdir. */
export function jobDirName(jobId: string, attempt: number): string {
  return `${encodeURIComponent(jobId)}.${attempt}`;
}

export class JobRun {
  readonly done: Promise<void>;
  readonly jobDir: string;
  private stopReason: StopReason | undefined;
  private stopDetail = "";
  private signalStopped!: (value: typeof STOPPED) => void;
  private readonly stopped = new Promise<typeof STOPPED>((resolve) => {
    this.signalStopped = resolve;
  });
  private payload: Payload | undefined;
  private timedOut = false;

  constructor(
    readonly spec: JobSpec,
    readonly thread: Thread,
    private readonly context: JobRunContext,
  ) {
    this.jobDir = join(context.workdir, jobDirName(spec.jobId, spec.attempt));
    this.done = this.run();
  }

  get jobId(): string {
    return this.spec.jobId;
  }

  get attempt(): number {
    return this.spec.attempt;
  }

  is(jobId: string, attempt: number): boolean {
    return this.spec.jobId === jobId && this.spec.attempt === attempt;
  }

  /** Stops the job in whatever phase it is; the first reason given is the one reported. */
  stop(reason: StopReason, detail: string): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.stopDetail = detail;
    this.signalStopped(STOPPED);
    if (this.payload !== undefined) void this.payload.kill(KILL_GRACE_MS);
  }

  /** Kills the payload's group at once and synchronously; nothing is reported. */
  killPayloadNow(): void {
    this.payload?.killNow();
  }

  private async run(): Promise<void> {
    const fields = { jobId: this.jobId, attempt: this.attempt, thread: this.thread };
    let ending: Ending;
    try {
      ending = await this.execute();
    } catch (err) {
      ending = { outcome: "failed", exitCode: null, errorClass: "pilot", errorMessage: messageOf(err) };
    }
    if (this.stopReason === "abandoned") {
      this.context.log.warn("job abandoned without a report", { ...fields, reason: this.stopDetail });
      return;
    }
    if (ending.errorMessage !== undefined) {
      ending.errorMessage = ending.errorMessage.slice(0, MAX_ERROR_MESSAGE_CHARS);
    }
    this.context.report({ type: "job.ended", jobId: this.jobId, attempt: this.attempt, ...ending });
    this.context.log.info("job ended", { ...fields, ...ending, outputs: ending.outputs?.length ?? 0 });
    // The uploaded log is the record of the job now; without it the directory stays for whoever looks.
    if (ending.log !== undefined)
      await rm(this.jobDir, { recursive: true, force: true }).catch(() => undefined);
  }

  private async execute(): Promise<Ending> {
    const { spec, context } = this;
    await mkdir(this.jobDir, { recursive: true });
    if (spec.sandbox !== undefined) {
      try {
        await this.unlessStopped(installSandbox(spec.sandbox, this.jobDir, context.headersFor));
      } catch (err) {
        return this.withLog(
          failed("stagein", `sandbox ${spec.sandbox.sha256} refused: ${messageOf(err)}`, null),
        );
      }
      if (this.stopReason !== undefined) return this.stoppedEnding(null);
    }
    try {
      await this.unlessStopped(stageIn(spec.inputs, this.jobDir, context.headersFor));
    } catch (err) {
      return this.withLog(failed("stagein", `stage-in failed: ${messageOf(err)}`, null));
    }
    if (this.stopReason !== undefined) return this.stoppedEnding(null);
    this.reportStatus("starting");
    let payload: Payload;
    try {
      payload = await Payload.start({
        command: [spec.command[0]!, ...spec.command.slice(1)],
        cwd: this.jobDir,
        env: this.payloadEnv(),
        logPath: this.logPath,
      });
    } catch (err) {
      return this.withLog(failed("payload", `cannot start the payload: ${messageOf(err)}`, null));
    }
    this.payload = payload;
    context.log.info("payload started", { jobId: this.jobId, attempt: this.attempt, pid: payload.pid });
    // A stop that came while the process was starting found no payload to kill.
    if (this.stopReason !== undefined) void payload.kill(KILL_GRACE_MS);
    this.reportStatus("running");
    const exit = await this.underWalltime(payload);
    if (this.stopReason !== undefined) return this.stoppedEnding(exit);
    if (this.timedOut) {
      return this.withLog(failed("timeout", `walltime of ${spec.walltimeSec} s exceeded`, exit.exitCode));
    }
    if (exit.exitCode !== 0) return this.withLog(failed("payload", describeExit(exit), exit.exitCode));
    if (spec.build === undefined) return this.stageOutputs();
    let built: Awaited<ReturnType<typeof publishBuild>> | typeof STOPPED;
    try {
      built = await this.unlessStopped(publishBuild(spec.build, this.jobDir, spec, context.headersFor));
    } catch (err) {
      return this.withLog(failed("stageout", `the build's sandbox was not published: ${messageOf(err)}`, 0));
    }
    if (built === STOPPED) return this.stoppedEnding({ exitCode: 0, signal: null });
    return this.stageOutputs(built);
  }

  private async stageOutputs(sandbox?: Ending["sandbox"]): Promise<Ending> {
    const { spec, context } = this;
    let staged: Awaited<ReturnType<typeof stageOut>> | typeof STOPPED;
    try {
      staged = await this.unlessStopped(
        stageOut(spec.outputs, this.jobDir, spec.uploadUrl, context.headersFor),
      );
    } catch (err) {
      return this.withLog(failed("stageout", `stage-out failed: ${messageOf(err)}`, 0));
    }
    if (staged === STOPPED) return this.stoppedEnding({ exitCode: 0, signal: null });
    if (staged.missing.length > 0) {
      return this.withLog(failed("payload", `expected outputs missing: ${staged.missing.join(", ")}`, 0));
    }
    return this.withLog({
      outcome: "finished",
      exitCode: 0,
      outputs: staged.uploaded,
      ...(sandbox ? { sandbox } : {}),
    });
  }

  private async underWalltime(payload: Payload): Promise<PayloadExit> {
    const timer = setTimeout(() => {
      this.timedOut = true;
      this.context.log.warn("walltime exceeded; killing the payload", {
        jobId: this.jobId,
        attempt: this.attempt,
        walltimeSec: this.spec.walltimeSec,
      });
      void payload.kill(KILL_GRACE_MS);
    }, this.spec.walltimeSec * 1000);
    try {
      return await payload.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private stoppedEnding(exit: PayloadExit | null): Promise<Ending> | Ending {
    const exitCode = exit?.exitCode ?? null;
    if (this.stopReason === "cancelled") {
      return this.withLog({
        outcome: "cancelled",
        exitCode,
        errorClass: "killed",
        errorMessage: `killed by the server: ${this.stopDetail}`,
      });
    }
    return failed("pilot", `pilot stopped: ${this.stopDetail}`, exitCode);
  }

  /**
   * Adds the uploaded log, with the pilot's reason for a failure appended so
   * the log tells the whole story. A log that cannot be uploaded is noted but
   * does not change the outcome. A pilot going away has no time for uploads.
   */
  private async withLog(ending: Ending): Promise<Ending> {
    if (this.stopReason === "pilotStopped" || this.stopReason === "abandoned") return ending;
    const lfn = `${this.jobId}.${this.attempt}.log.txt`;
    try {
      if (ending.errorMessage !== undefined)
        await appendFile(this.logPath, `[pilot] ${ending.errorMessage}\n`);
      const log = await uploadAs(this.logPath, lfn, this.spec.uploadUrl, this.context.headersFor);
      return { ...ending, log };
    } catch (err) {
      this.context.log.warn("log upload failed", { jobId: this.jobId, attempt: this.attempt, error: err });
      return ending;
    }
  }

  private get logPath(): string {
    return join(this.jobDir, "payload.log");
  }

  private payloadEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.spec.env };
    for (const name of this.context.hiddenEnv) delete env[name];
    return {
      ...env,
      PANDA_JOB_ID: this.jobId,
      PANDA_ATTEMPT: String(this.attempt),
      PANDA_WORKDIR: this.jobDir,
    };
  }

  private reportStatus(state: "starting" | "running"): void {
    this.context.report({ type: "job.status", jobId: this.jobId, attempt: this.attempt, state });
  }

  private unlessStopped<T>(work: Promise<T>): Promise<T | typeof STOPPED> {
    return Promise.race([work, this.stopped]);
  }
}

function failed(errorClass: ErrorClass, errorMessage: string, exitCode: number | null): Ending {
  return { outcome: "failed", exitCode, errorClass, errorMessage };
}
