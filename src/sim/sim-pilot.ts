/**
 * A pilot on a worker node, simulated: it says hello to the real dispatcher
 * through the same `PilotSession` / `GatewayHandlers` interfaces as a
 * WebSocket session, asks for work per thread, and plays each job it is
 * pushed on the virtual clock (stage-in, payload, stage-out, heartbeats,
 * the end report), failing it as the site's failure probabilities say.
 * Messages go to the dispatcher one at a time, in order, as the gateway
 * delivers them.
 *
 * Over 400 lines for want of a seam: a pilot's life (hello, drain, idle and
 * lifetime ends, death) and the jobs it plays share its threads, its timers
 * and its ordered send queue at every step, so either half apart would reach
 * into the other's state.
 */
import type { ServerMessageInput } from "../gateway/frames.js";
import {
  type GatewayHandlers,
  GatewayRefusal,
  type PilotHello,
  type PilotPrincipal,
  type PilotReport,
  type PilotSession,
} from "../gateway/handlers.js";
import { PROTOCOL_VERSION, type Thread } from "../protocol/messages.js";
import type { QueuedEvent } from "./event-queue.js";
import type { InvariantMonitor } from "./invariants.js";
import { type AttemptPlan, type PayloadModel, simChecksum } from "./payload-model.js";
import type { StorageLedger } from "./storage-ledger.js";
import type { SlotMeter } from "./time-integral.js";
import type { PhysicalSite } from "./topology.js";
import type { VirtualClock } from "./virtual-clock.js";

/** What every simulated pilot of a run shares. */
export interface PilotEnvironment {
  clock: VirtualClock;
  handlers: GatewayHandlers;
  payloads: PayloadModel;
  monitor: InvariantMonitor;
  ledger: StorageLedger;
  /** Refusals the server answered, by code: a healthy run has none but stale reports after kills. */
  refusals: Map<string, number>;
  /** A failure of the simulation itself (not of a job): stops the run. */
  onError(err: unknown): void;
}

export interface PilotOptions {
  pilotId: string;
  /** The PanDA queue it serves. */
  queue: string;
  site: PhysicalSite;
  meter: SlotMeter;
  multitask: boolean;
  /** How long it asks for new work. */
  lifetimeMs: number;
  /** While both threads run payloads, each advances at 1/slowdown. */
  slowdown: number;
  /** The batch slot is free again. */
  onGone(): void;
}

type Phase = "stagein" | "payload" | "stageout";
/** A job as the dispatcher pushes it. */
type JobSpec = Extract<ServerMessageInput, { type: "job.push" }>["job"];

interface Run {
  spec: JobSpec;
  thread: Thread;
  plan: AttemptPlan;
  phase: Phase;
  next: QueuedEvent | null;
  /** Payload work left, in ms at full pace, as of `pacedAtMs`. */
  workLeftMs: number;
  pace: number;
  pacedAtMs: number;
}

/** Frames a simulated pilot sends, as the gateway hands them to the dispatcher. */
type Report = PilotReport;
type ReportBody = Report extends infer R ? (R extends Report ? Omit<R, "v" | "id"> : never) : never;

export class SimPilot implements PilotSession {
  readonly pilotId: string;
  readonly site: string;
  readonly principal: PilotPrincipal;
  readonly hello: PilotHello;
  readonly connectedAtMs: number;
  private openValue = true;
  private welcomed = false;
  private mode: "working" | "draining" | "gone" | "dead" = "working";
  private readonly threads = new Map<Thread, Run | null>();
  private frameSeq = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly timers: QueuedEvent[] = [];
  private idleTimer: QueuedEvent | null = null;
  private busyThreads = 0;

  constructor(
    private readonly env: PilotEnvironment,
    private readonly options: PilotOptions,
  ) {
    this.pilotId = options.pilotId;
    this.site = options.queue;
    this.principal = { site: options.queue, tokenId: "simulated" };
    this.connectedAtMs = env.clock.nowMs();
    const config = options.site.config;
    this.hello = {
      v: PROTOCOL_VERSION,
      id: this.nextFrameId(),
      type: "pilot.hello",
      site: options.queue,
      hostname: `${options.pilotId}.wn`,
      cores: 1,
      memoryMb: config.memoryPerSlotMb,
      diskMb: config.scratchDiskMb,
      walltimeLeftSec: Math.floor(options.lifetimeMs / 1000),
      multitask: options.multitask,
      agent: "panda-sim",
    };
    this.threads.set("primary", null);
    if (options.multitask) this.threads.set("secondary", null);
  }

  get open(): boolean {
    return this.openValue;
  }

  /** Says hello, then asks for work on every thread. */
  start(): void {
    const { clock, monitor } = this.env;
    monitor.pilotStarted(this.pilotId);
    this.enqueue(async () => {
      await this.env.handlers.onHello(this, this.hello, false);
      this.welcomed = true;
    });
    const config = this.options.site.config.pilots;
    this.timers.push(clock.at(clock.nowMs() + this.options.lifetimeMs, () => this.lifetimeOver()));
    this.scheduleHeartbeat(config.heartbeatInterval);
    for (const thread of this.threads.keys()) this.send({ type: "pilot.ready", thread });
    this.armIdle();
  }

  push(message: ServerMessageInput): boolean {
    if (!this.welcomed || !this.openValue) return false;
    if (message.type === "job.push") this.received(message.thread, message.job);
    else if (message.type === "job.kill") this.killed(message.jobId, message.attempt);
    else if (message.type === "pilot.drain") this.drain();
    return true;
  }

  close(_code: number, _reason: string): void {
    this.openValue = false;
  }

  /** The node dies: nothing more is reported; the jobs' heartbeat watchdogs will fail them. */
  die(): void {
    if (this.mode === "dead" || this.mode === "gone") return;
    this.mode = "dead";
    this.openValue = false;
    for (const run of this.threads.values()) if (run?.next) this.env.clock.cancel(run.next);
    this.setBusy(0);
    this.stopTimers();
    this.env.monitor.pilotDied(this.pilotId);
    // The gateway notices the dropped socket; nothing the pilot said is in flight any more.
    this.enqueue(async () => this.env.handlers.onDisconnect(this, "node lost"));
    this.options.onGone();
  }

  private received(thread: Thread, spec: JobSpec): void {
    const current = this.threads.get(thread);
    if (current === undefined) {
      this.env.onError(
        new Error(`${this.pilotId} was pushed ${spec.jobId} on a ${thread} thread it does not have`),
      );
      return;
    }
    if (current !== null) {
      this.env.monitor.threadBusy(this.pilotId, thread, spec.jobId, current.spec.jobId);
      return;
    }
    this.env.monitor.take(this.pilotId, thread, spec.jobId);
    this.disarmIdle();
    const plan = this.env.payloads.plan(spec, this.options.site.config.failures);
    const run: Run = {
      spec,
      thread,
      plan,
      phase: "stagein",
      next: null,
      workLeftMs: 0,
      pace: 1,
      pacedAtMs: 0,
    };
    this.threads.set(thread, run);
    // Pushes arrive inside the dispatcher's call; the pilot acts on them in its own turn.
    this.at(0, run, () => this.begin(run));
  }

  private begin(run: Run): void {
    const { spec, plan } = run;
    this.send({ type: "job.ack", jobId: spec.jobId, attempt: spec.attempt });
    this.send({ type: "job.status", jobId: spec.jobId, attempt: spec.attempt, state: "starting" });
    const inputBytes = spec.inputs.reduce((sum, f) => sum + f.sizeBytes, 0);
    const stageInMs = this.localTransferMs(inputBytes);
    if (plan.failure?.errorClass === "pilot") {
      this.at(stageInMs * plan.failure.atFraction, run, () =>
        this.end(run, "failed", {
          errorClass: "pilot",
          errorCode: 1102,
          errorMessage: "pilot set-up failed (simulated)",
        }),
      );
      return;
    }
    this.at(stageInMs, run, () => this.startPayload(run));
  }

  private startPayload(run: Run): void {
    const { spec, plan } = run;
    this.send({ type: "job.status", jobId: spec.jobId, attempt: spec.attempt, state: "running" });
    const cut = plan.failure?.errorClass === "payload" || plan.failure?.errorClass === "lostHeartbeat";
    run.phase = "payload";
    run.workLeftMs = cut ? plan.durationMs * plan.failure!.atFraction : plan.durationMs;
    run.pacedAtMs = this.env.clock.nowMs();
    this.setBusy(this.busyThreads + 1);
    this.repace();
  }

  private payloadEnded(run: Run): void {
    this.setBusy(this.busyThreads - 1);
    run.phase = "stageout";
    run.workLeftMs = 0;
    this.repace();
    const failure = run.plan.failure;
    if (failure?.errorClass === "lostHeartbeat") {
      this.die();
      return;
    }
    if (failure?.errorClass === "payload") {
      this.end(run, "failed", {
        errorClass: "payload",
        exitCode: 65,
        errorMessage: "payload exited with 65 (simulated)",
      });
      return;
    }
    const outputBytes = run.plan.outputBytes.reduce((sum, b) => sum + b, 0);
    this.at(this.localTransferMs(outputBytes), run, () => {
      if (failure?.errorClass === "stageout") {
        this.end(run, "failed", {
          errorClass: "stageout",
          errorCode: 1137,
          errorMessage: "output upload failed (simulated)",
        });
        return;
      }
      this.env.ledger.add(this.options.site.name, outputBytes);
      const outputs = run.spec.outputs.map((lfn, i) => ({
        lfn,
        sizeBytes: run.plan.outputBytes[i] ?? 0,
        checksum: simChecksum(lfn),
      }));
      this.end(run, "finished", { exitCode: 0, outputs });
    });
  }

  /** Multitask contention: payloads sharing the slot advance at 1/slowdown of their pace. */
  private repace(): void {
    const nowMs = this.env.clock.nowMs();
    let running = 0;
    for (const run of this.threads.values()) if (run?.phase === "payload") running++;
    const pace = running >= 2 ? 1 / this.options.slowdown : 1;
    for (const run of this.threads.values()) {
      if (run?.phase !== "payload") continue;
      run.workLeftMs = Math.max(0, run.workLeftMs - (nowMs - run.pacedAtMs) * run.pace);
      run.pacedAtMs = nowMs;
      if (run.next && run.pace === pace) continue;
      run.pace = pace;
      this.at(run.workLeftMs / pace, run, () => this.payloadEnded(run));
    }
  }

  private end(
    run: Run,
    outcome: "finished" | "failed" | "cancelled",
    details: {
      exitCode?: number | null;
      errorClass?: "pilot" | "payload" | "stageout" | "killed";
      errorCode?: number;
      errorMessage?: string;
      outputs?: { lfn: string; sizeBytes: number; checksum: string }[];
    },
  ): void {
    const { spec } = run;
    this.halt(run);
    this.send({
      type: "job.ended",
      jobId: spec.jobId,
      attempt: spec.attempt,
      outcome,
      exitCode: details.exitCode ?? null,
      ...(details.errorClass ? { errorClass: details.errorClass } : {}),
      ...(details.errorCode !== undefined ? { errorCode: details.errorCode } : {}),
      ...(details.errorMessage ? { errorMessage: details.errorMessage } : {}),
      outputs: details.outputs ?? [],
    });
    this.freeThread(run);
  }

  /** Stops whatever the run was doing, giving its share of the slot back. */
  private halt(run: Run): void {
    if (run.next) this.env.clock.cancel(run.next);
    run.next = null;
    if (run.phase === "payload") {
      this.setBusy(this.busyThreads - 1);
      run.phase = "stageout";
      this.repace();
    }
  }

  private freeThread(run: Run): void {
    this.env.monitor.release(run.spec.jobId);
    this.threads.set(run.thread, null);
    if (this.mode === "working") this.send({ type: "pilot.ready", thread: run.thread });
    if (this.idleNow()) {
      if (this.mode === "draining") this.exit("lifetime over");
      else this.armIdle();
    }
  }

  private killed(jobId: string, attempt: number): void {
    for (const run of this.threads.values()) {
      if (run?.spec.jobId !== jobId || run.spec.attempt !== attempt) continue;
      // Acted on in the pilot's own turn, like a push.
      this.env.clock.at(this.env.clock.nowMs(), () => {
        if (this.threads.get(run.thread) === run && this.mode !== "dead" && this.mode !== "gone")
          this.end(run, "cancelled", { errorClass: "killed", errorMessage: "killed by the server" });
      });
    }
  }

  private drain(): void {
    if (this.mode !== "working") return;
    this.mode = "draining";
    this.send({ type: "pilot.draining", reason: "asked to drain" });
    if (this.idleNow()) this.exit("drained");
  }

  private lifetimeOver(): void {
    if (this.mode !== "working") return;
    this.mode = "draining";
    this.send({ type: "pilot.draining", reason: "lifetime over" });
    if (this.idleNow()) this.exit("lifetime over");
  }

  private exit(reason: string): void {
    if (this.mode === "gone" || this.mode === "dead") return;
    this.mode = "gone";
    this.stopTimers();
    this.enqueue(async () => {
      this.openValue = false;
      this.env.handlers.onDisconnect(this, reason);
      this.env.monitor.pilotExited(this.pilotId);
    });
    this.options.onGone();
  }

  private idleNow(): boolean {
    for (const run of this.threads.values()) if (run) return false;
    return true;
  }

  private armIdle(): void {
    this.disarmIdle();
    if (this.mode !== "working") return;
    const { clock } = this.env;
    this.idleTimer = clock.at(clock.nowMs() + this.options.site.config.pilots.idleTimeout, () => {
      this.idleTimer = null;
      if (this.mode === "working" && this.idleNow()) this.exit("idle timeout");
    });
  }

  private disarmIdle(): void {
    if (this.idleTimer) this.env.clock.cancel(this.idleTimer);
    this.idleTimer = null;
  }

  private scheduleHeartbeat(everyMs: number): void {
    const { clock } = this.env;
    const event = clock.at(clock.nowMs() + everyMs, () => {
      this.timers.splice(this.timers.indexOf(event), 1);
      if (this.mode === "dead" || this.mode === "gone") return;
      for (const run of this.threads.values()) {
        if (run) this.send({ type: "job.heartbeat", jobId: run.spec.jobId, attempt: run.spec.attempt });
      }
      this.scheduleHeartbeat(everyMs);
    });
    this.timers.push(event);
  }

  private stopTimers(): void {
    for (const timer of this.timers) this.env.clock.cancel(timer);
    this.timers.length = 0;
    this.disarmIdle();
  }

  private setBusy(threads: number): void {
    const wasBusy = this.busyThreads > 0;
    this.busyThreads = threads;
    const isBusy = threads > 0;
    if (wasBusy !== isBusy) this.options.meter.busy.add(isBusy ? 1 : -1, this.env.clock.nowMs());
  }

  private localTransferMs(bytes: number): number {
    return (bytes / this.options.site.config.localBandwidth) * 1000;
  }

  /** Schedules a run's next step (replacing the one pending). */
  private at(delayMs: number, run: Run, step: () => void): void {
    const { clock } = this.env;
    if (run.next) clock.cancel(run.next);
    run.next = clock.at(clock.nowMs() + Math.ceil(delayMs), () => {
      run.next = null;
      if (this.threads.get(run.thread) !== run || this.mode === "dead" || this.mode === "gone") return;
      step();
    });
  }

  private nextFrameId(): string {
    return `${this.pilotId}:${++this.frameSeq}`;
  }

  private send(body: ReportBody): void {
    const frame = { ...body, v: PROTOCOL_VERSION, id: this.nextFrameId() } as Report;
    this.enqueue(() =>
      this.env.handlers.onMessage(this, frame).catch((err: unknown) => this.refused(frame, err)),
    );
  }

  /** One message at a time, in order, as the gateway calls the handlers for a session. */
  private enqueue(call: () => Promise<void>): void {
    this.chain = this.chain.then(call).catch((err: unknown) => this.env.onError(err));
  }

  private refused(frame: Report, err: unknown): void {
    if (!(err instanceof GatewayRefusal)) throw err;
    this.env.refusals.set(err.code, (this.env.refusals.get(err.code) ?? 0) + 1);
    if (!("jobId" in frame) || err.code !== "NOT_YOUR_JOB") return;
    // The job is not ours (any more): stop it without a report; a stale attempt is also told to us by a kill.
    for (const run of this.threads.values()) {
      if (run?.spec.jobId === frame.jobId && this.mode !== "dead" && this.mode !== "gone") {
        this.halt(run);
        this.freeThread(run);
      }
    }
  }
}
