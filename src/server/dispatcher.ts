import type { IncomingMessage } from "node:http";
import { z } from "zod";
import type { JobContext } from "../actors/job/schema.js";
import { refs } from "../actors/shared/names.js";
import {
  type GatewayHandlers,
  GatewayRefusal,
  type PilotHello,
  type PilotPrincipal,
  type PilotReport,
  type PilotSession,
  type WelcomeJob,
} from "../gateway/handlers.js";
import { validate } from "../protocol/codec.js";
import type { JobSpec, Thread } from "../protocol/messages.js";
import type { TimerHandle } from "../runtime/clock.js";
import { isRuntimeError } from "../runtime/errors.js";
import type { Logger } from "../runtime/logger.js";
import { queueNames } from "../store/queue-index.js";
import { storageUrl } from "../transfer/http-client.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";
import { SharedHeadReads } from "./shared-head-reads.js";
import type { TokenRegistry } from "./tokens.js";

export interface DispatcherOptions {
  /** The base URL pilots use for storage (inputs and uploads). */
  publicUrl: string;
  /** Secondary threads take only analysis jobs at most this long. */
  shortAnalysisWalltimeSec: number;
  /** Safety net for activations another node heard about: idle threads look at their queue this often. */
  idlePollMs: number;
  log: Logger;
}

interface PilotEntry {
  session: PilotSession;
  /** Threads that asked for work and have none. */
  ready: Set<Thread>;
  draining: boolean;
  /** Jobs pushed to this session (job id -> attempt): its ack needs no read of the job. */
  pushed: Map<string, number>;
}

const pilotKillSchema = z.object({
  pilotId: z.string().optional(),
  jobId: z.string(),
  attempt: z.number().int(),
  reason: z.string(),
});

/** Jobs a pilot holds, as `jobId` members scored by thread: durable, so a restarted server can welcome it back. */
const pilotJobsQueue = (pilotId: string) => `pilot-jobs:${pilotId}`;
const THREAD_SCORE: Record<Thread, number> = { primary: 0, secondary: 1 };

function attemptOf(jobId: string): number {
  return Number(jobId.slice(jobId.lastIndexOf(".") + 1));
}

function expand(text: string, job: JobContext): string {
  return text
    .replaceAll("{jobId}", job.jobId)
    .replaceAll("{taskId}", job.taskId)
    .replaceAll("{attempt}", String(job.attempt))
    .replaceAll("{index}", String(job.index));
}

/**
 * Late binding: a pilot thread that says it is ready gets the best activated
 * job of its site pushed at once, or as soon as one is activated. Pilot
 * reports become job events; a report for the wrong pilot or attempt is
 * answered, never applied.
 */
export class Dispatcher implements GatewayHandlers {
  private readonly pilots = new Map<string, PilotEntry>();
  /** The same entries by site: brokerage counts a site's pilots and activations fill them, per job, so no scan of every pilot. */
  private readonly pilotsBySite = new Map<string, Set<PilotEntry>>();
  /** Per site, the sessions with a thread asking for work: an activation looks at these only. */
  private readonly readyBySite = new Map<string, Set<PilotEntry>>();
  /** Jobs a thread of this node is binding right now: other local threads look elsewhere. */
  private readonly claiming = new Set<string>();
  private readonly heads: SharedHeadReads;
  /** On the runtime's clock, so a simulation's virtual time drives it like every other timer. */
  private idleTimer: TimerHandle | null = null;
  private closed = false;
  private readonly lastSeenReportMs = new Map<string, number>();
  private readonly dispatchLatency = new Set<(site: string, ms: number) => void>();

  constructor(
    private readonly grid: Grid,
    private readonly tokens: TokenRegistry,
    private readonly options: DispatcherOptions,
  ) {
    this.heads = new SharedHeadReads(grid.ctx.index);
    grid.setPilotCounter((site) => this.connectedAt(site));
    grid.onActivated((site) => {
      for (const lane of ["production", "analysis"] as const)
        this.heads.changed(queueNames.siteQueue(site, lane));
      void this.fillSite(site);
    });
    grid.runtime.onEffect("pilot.kill", (data) => this.killOnPilot(data));
    this.scheduleIdlePoll();
  }

  private scheduleIdlePoll(): void {
    if (this.closed) return;
    const clock = this.grid.runtime.clock;
    this.idleTimer = clock.setTimer(() => {
      for (const [site, ready] of this.readyBySite) if (ready.size > 0) void this.fillSite(site);
      this.scheduleIdlePoll();
    }, this.options.idlePollMs);
  }

  close(): void {
    this.closed = true;
    if (this.idleTimer) this.grid.runtime.clock.clearTimer(this.idleTimer);
  }

  /** Sessions registered at the site (hello to disconnect): brokerage asks for every site per job, so O(1). */
  connectedAt(site: string): number {
    return this.pilotsBySite.get(site)?.size ?? 0;
  }

  connectedPilots(): { pilotId: string; site: string; ready: Thread[]; draining: boolean }[] {
    return [...this.pilots.values()].map((p) => ({
      pilotId: p.session.pilotId,
      site: p.session.site,
      ready: [...p.ready],
      draining: p.draining,
    }));
  }

  /** Observes activation -> push latency (metrics, benchmarks). */
  onDispatch(listener: (site: string, ms: number) => void): () => void {
    this.dispatchLatency.add(listener);
    return () => this.dispatchLatency.delete(listener);
  }

  async authenticate(token: string, _request: IncomingMessage): Promise<PilotPrincipal | null> {
    const principal = this.tokens.lookup(token);
    return principal?.kind === "pilot" ? { site: principal.site, tokenId: principal.tokenId } : null;
  }

  async onHello(session: PilotSession, _hello: PilotHello, _resumed: boolean): Promise<WelcomeJob[]> {
    const previous = this.pilots.get(session.pilotId);
    previous?.session.close(4002, "replaced by a newer session");
    if (previous) {
      this.pilotsBySite.get(previous.session.site)?.delete(previous);
      this.readyBySite.get(previous.session.site)?.delete(previous);
    }
    const entry: PilotEntry = { session, ready: new Set(), draining: false, pushed: new Map() };
    this.pilots.set(session.pilotId, entry);
    let atSite = this.pilotsBySite.get(session.site);
    if (!atSite) {
      atSite = new Set();
      this.pilotsBySite.set(session.site, atSite);
    }
    atSite.add(entry);
    this.notePilotSeen(session.site, session.pilotId);
    const held = await this.grid.ctx.index.range(pilotJobsQueue(session.pilotId), 0, 100);
    return held.map((e) => ({
      jobId: e.member,
      attempt: attemptOf(e.member),
      thread: e.score === THREAD_SCORE.secondary ? "secondary" : "primary",
    }));
  }

  onDisconnect(session: PilotSession, reason: string): void {
    // A resumed session may already have replaced this one.
    const entry = this.pilots.get(session.pilotId);
    if (entry?.session === session) {
      this.pilots.delete(session.pilotId);
      this.pilotsBySite.get(session.site)?.delete(entry);
      this.readyBySite.get(session.site)?.delete(entry);
    }
    this.options.log.info({ pilotId: session.pilotId, site: session.site, reason }, "pilot disconnected");
  }

  async onMessage(session: PilotSession, message: PilotReport): Promise<void> {
    const entry = this.pilots.get(session.pilotId);
    if (!entry) throw new GatewayRefusal("NOT_READY", "session is not registered");
    const atMs = this.grid.runtime.clock.nowMs();
    switch (message.type) {
      case "pilot.ready":
        if (entry.draining) return;
        if (message.thread === "secondary" && !session.hello.multitask) {
          throw new GatewayRefusal("SCHEMA", "thread: a pilot without multitask has no secondary thread");
        }
        this.markReady(entry, message.thread);
        this.notePilotSeen(session.site, session.pilotId);
        void this.fillPilot(entry);
        return;
      case "pilot.draining":
        entry.draining = true;
        for (const thread of [...entry.ready]) this.markBusy(entry, thread);
        return;
      case "job.ack":
        if (entry.pushed.get(message.jobId) === message.attempt) return;
        await this.checkOwnership(session, message.jobId, message.attempt);
        return;
      case "job.status":
        await this.report(session, message, { type: `pilot.${message.state}`, atMs });
        return;
      case "job.heartbeat":
        await this.report(session, message, { type: "pilot.heartbeat", atMs });
        return;
      case "job.ended": {
        const ended = {
          type: "pilot.ended",
          exitCode: message.exitCode ?? (message.outcome === "finished" ? 0 : -1),
          ...(message.outcome === "finished"
            ? {}
            : { errorClass: message.errorClass ?? (message.outcome === "cancelled" ? "killed" : "pilot") }),
          ...(message.errorCode !== undefined ? { errorCode: message.errorCode } : {}),
          ...(message.errorMessage ? { errorMessage: message.errorMessage } : {}),
          outputs: message.outputs,
          log: message.log ?? null,
          atMs,
        };
        await this.report(session, message, ended);
        entry.pushed.delete(message.jobId);
        await this.grid.ctx.index.remove(pilotJobsQueue(session.pilotId), message.jobId);
        return;
      }
    }
  }

  /**
   * Applies a pilot report to its job, once (the frame id makes resends
   * duplicates). A refusal is explained: another pilot's job, or a stale
   * attempt, which is also told to stop.
   */
  private async report(
    session: PilotSession,
    message: Extract<PilotReport, { jobId: string }>,
    event: { type: string; atMs: number },
  ): Promise<void> {
    try {
      await this.grid.runtime.send(
        refs.job(message.jobId),
        { ...event, pilotId: session.pilotId, attempt: message.attempt },
        {
          eventId: `pilot:${session.pilotId}:${message.jobId}:${message.id}`,
          cause: `pilot:${session.pilotId}`,
        },
      );
    } catch (err) {
      if (!isRuntimeError(err)) throw err;
      const job = await this.checkOwnership(session, message.jobId, message.attempt);
      if (message.type === "job.ended" && job.status === "done") return; // its end is already known: acknowledge
      if (job.status === "done") {
        this.pushKill(session, message.jobId, message.attempt, `job is ${job.state}`);
        throw new GatewayRefusal("STALE_ATTEMPT", `job ${message.jobId} is ${job.state}`);
      }
      throw new GatewayRefusal("STALE_ATTEMPT", `job ${message.jobId} in ${job.state} refused ${event.type}`);
    }
  }

  private async checkOwnership(session: PilotSession, jobId: string, attempt: number) {
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

  private async killOnPilot(data: unknown): Promise<void> {
    const kill = validate(pilotKillSchema, data, "pilot.kill");
    await this.grid.ctx.index.remove(pilotJobsQueue(kill.pilotId ?? ""), kill.jobId);
    const entry = kill.pilotId ? this.pilots.get(kill.pilotId) : undefined;
    entry?.pushed.delete(kill.jobId);
    // A pilot connected elsewhere (or not at all) learns it at its next report, answered with a kill.
    entry?.session.push({ type: "job.kill", jobId: kill.jobId, attempt: kill.attempt, reason: kill.reason });
  }

  /** Pilot request rate per site, for brokerage; at most one event per site and second. */
  private notePilotSeen(site: string, pilotId: string): void {
    const nowMs = this.grid.runtime.clock.nowMs();
    if ((this.lastSeenReportMs.get(site) ?? 0) > nowMs - 1000) return;
    this.lastSeenReportMs.set(site, nowMs);
    this.grid.runtime
      .send(refs.site(site), { type: "pilot.seen", pilotId, atMs: nowMs })
      .catch((err: unknown) => {
        this.options.log.debug({ site, err: (err as Error).message }, "pilot.seen refused");
      });
  }

  /**
   * Offers the site's queue to its idle threads, pilot after pilot, until a
   * primary thread finds nothing to take: it looks at every lane, so the
   * threads after it would find nothing either (each would cost a queue read).
   */
  private async fillSite(site: string): Promise<void> {
    // A copy: a thread that finds nothing asks again, and must not be offered the queue twice here.
    for (const entry of [...(this.readyBySite.get(site) ?? [])]) {
      if (entry.ready.size === 0) continue;
      if ((await this.fillPilot(entry)) === "queue empty") return;
    }
  }

  private markReady(entry: PilotEntry, thread: Thread): void {
    entry.ready.add(thread);
    let ready = this.readyBySite.get(entry.session.site);
    if (!ready) {
      ready = new Set();
      this.readyBySite.set(entry.session.site, ready);
    }
    ready.add(entry);
  }

  private markBusy(entry: PilotEntry, thread: Thread): void {
    entry.ready.delete(thread);
    if (entry.ready.size === 0) this.readyBySite.get(entry.session.site)?.delete(entry);
  }

  private async fillPilot(entry: PilotEntry): Promise<"queue empty" | undefined> {
    let outcome: "queue empty" | undefined;
    for (const thread of [...entry.ready]) {
      if (!entry.ready.has(thread) || entry.draining || !entry.session.open) continue;
      this.markBusy(entry, thread);
      const pushed = await this.dispatchTo(entry, thread).catch((err: unknown) => {
        this.options.log.error(
          { pilotId: entry.session.pilotId, err: (err as Error).message },
          "dispatch failed",
        );
        return false;
      });
      if (!pushed && thread === "primary") outcome = "queue empty";
      if (!pushed && entry.session.open && !entry.draining) this.markReady(entry, thread);
    }
    return outcome;
  }

  /** Claims the best fitting job of the site for one thread and pushes it. */
  /**
   * Binds the best fitting job of the site to one thread and pushes it. The
   * job actor is the arbiter: its `dispatch` is accepted once, so two threads
   * (on any nodes) can never hold one job; the queue entry is removed after,
   * and a crash in between leaves only a stale entry the next look discards.
   */
  private async dispatchTo(entry: PilotEntry, thread: Thread): Promise<boolean> {
    const site = entry.session.site;
    const lanes = thread === "primary" ? (["production", "analysis"] as const) : (["analysis"] as const);
    for (const lane of lanes) {
      const queue = queueNames.siteQueue(site, lane);
      const looked = new Set<string>();
      // Jobs other local threads are binding, and the ones looked at already, still sit at the
      // head of the queue: when they are all a read finds, read past them (further each time:
      // threads reading at once take what each read). Nothing to take only when the lane holds
      // nothing more.
      let count = 16;
      for (;;) {
        const head = await this.heads.head(queue, count);
        const candidates = head.filter((c) => !looked.has(c.member) && !this.claiming.has(c.member));
        if (candidates.length === 0) {
          if (head.length < count) break;
          // Powers of two, so the threads reading past the same head ask for the same read and share it.
          count = 2 ** Math.ceil(Math.log2(Math.max(2 * count, 16 + this.claiming.size + looked.size)));
          continue;
        }
        for (const candidate of candidates) {
          looked.add(candidate.member);
          if (this.claiming.has(candidate.member)) continue;
          this.claiming.add(candidate.member);
          try {
            if ((await this.bind(entry, thread, candidate.member, queue)) === "pushed") return true;
          } finally {
            this.claiming.delete(candidate.member);
          }
        }
      }
    }
    return false;
  }

  private async bind(
    entry: PilotEntry,
    thread: Thread,
    jobId: string,
    queue: string,
  ): Promise<"pushed" | "unfit" | "gone"> {
    const startedMs = performance.now();
    const { index } = this.grid.ctx;
    const session = entry.session;
    // Only a secondary thread must look at the job first (its walltime); for a primary the
    // dispatch itself is the check, and a job that is no longer activated refuses it.
    if (thread === "secondary") {
      const current = await readContext(this.grid.ctx, "job", jobId);
      if (current?.state !== "activated") {
        await index.remove(queue, jobId);
        return "gone";
      }
      if (current.context.resources.walltimeSec > this.options.shortAnalysisWalltimeSec) return "unfit";
    }
    let job: JobContext;
    try {
      const result = await this.grid.runtime.send(
        refs.job(jobId),
        { type: "dispatch", pilotId: session.pilotId, thread, atMs: this.grid.runtime.clock.nowMs() },
        { eventId: `dispatch:${jobId}:${session.pilotId}:${thread}`, cause: `dispatch:${session.pilotId}` },
      );
      if (result.outcome === "committed") {
        job = result.state.context as JobContext;
      } else {
        // Committed before (a duplicate of our own dispatch) or on another node: it is ours only if the job says so.
        const bound = await this.boundTo(jobId, session.pilotId);
        if (!bound) return "gone";
        job = bound;
      }
    } catch {
      // Another thread won it, or it was killed meanwhile.
      await index.remove(queue, jobId);
      return "gone";
    }
    // Recorded as the pilot's before it is pushed, so a restarted server welcomes the pilot back with it.
    await Promise.all([
      index.remove(queue, jobId),
      index.add(pilotJobsQueue(session.pilotId), jobId, THREAD_SCORE[thread]),
    ]);
    entry.pushed.set(jobId, job.attempt);
    if (!session.push({ type: "job.push", thread, job: this.jobSpec(job) })) {
      // The socket is gone or full: the job is sent but unheard of; the sent watchdog fails it and it is retried.
      this.options.log.warn({ pilotId: session.pilotId, jobId }, "push refused by the session");
      return "pushed";
    }
    const ms = performance.now() - startedMs;
    for (const listener of this.dispatchLatency) listener(session.site, ms);
    return "pushed";
  }

  /** The job's context if it is dispatched to this pilot, waiting briefly for a dispatch queued on another node. */
  private async boundTo(jobId: string, pilotId: string): Promise<JobContext | null> {
    for (let i = 0; i < 50; i++) {
      const job = await readContext(this.grid.ctx, "job", jobId);
      if (job && job.state !== "activated")
        return job.context.pilot?.pilotId === pilotId ? job.context : null;
      await new Promise<void>((r) => this.grid.runtime.clock.setTimer(r, 20));
    }
    return null;
  }

  private jobSpec(job: JobContext): JobSpec {
    const site = job.site ?? "";
    const payload = job.payload ?? { command: ["true"], env: {}, outputs: [] };
    return {
      jobId: job.jobId,
      attempt: job.attempt,
      taskId: job.taskId,
      type: job.type,
      command: payload.command.map((arg) => expand(arg, job)),
      env: payload.env,
      walltimeSec: job.resources.walltimeSec,
      inputs: job.inputs.map((f) => ({
        lfn: f.lfn,
        sizeBytes: f.sizeBytes,
        checksum: f.checksum,
        url: storageUrl(this.options.publicUrl, site, f.lfn),
      })),
      uploadUrl: `${this.options.publicUrl.replace(/\/+$/, "")}/storage/${encodeURIComponent(site)}`,
      outputs: (payload.outputs ?? []).map((name) => expand(name, job)),
    };
  }
}
