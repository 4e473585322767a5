/**
 * The gateway's handlers for a server node's pilots: the one object the
 * server (and the simulator) construct and the gateway calls, so that they
 * see one thing. Sessions live in `PilotSessions`, binding threads to jobs in
 * `ThreadBinder`, reports in `PilotReports`, the pushed spec in
 * `src/workload/job-spec.ts`; this class wires them to the grid, routes each
 * frame to the one that handles it, and keeps only what spans them (kills
 * and drains pushed to sessions, the sites' pilot requests).
 */
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { THREAD_SCORE } from "../actors/job/projections.js";
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
import type { Thread } from "../protocol/messages.js";
import { queueNames } from "../store/queue-index.js";
import type { Grid } from "../workload/grid.js";
import { HeartbeatLedger } from "./heartbeat-ledger.js";
import { LocalNodeBus, type NodeBus } from "./node-bus.js";
import { endedEvent, PilotReports, reportEventId } from "./pilot-reports.js";
import { PilotSeenReports } from "./pilot-seen-reports.js";
import { PilotSessions } from "./pilot-sessions.js";
import { SiteGate } from "./site-gate.js";
import { ThreadBinder, type ThreadBinderOptions } from "./thread-binder.js";
import type { TokenRegistry } from "./tokens.js";

/** Every option of the dispatcher is its binder's (the log is shared). */
export type DispatcherOptions = ThreadBinderOptions;

const pilotKillSchema = z.object({
  pilotId: z.string().optional(),
  jobId: z.string(),
  attempt: z.number().int(),
  reason: z.string(),
});

/** The notice that a kill is for a pilot connected to another node (a `pilot.kill` effect's data, JSON). */
const PILOT_KILL_TOPIC = "pilot-kill";

/** How old this node's copy of a site hosted elsewhere may be when a thread of it asks for work. */
const SITE_READ_MAX_AGE_MS = 1000;

function attemptOf(jobId: string): number {
  return Number(jobId.slice(jobId.lastIndexOf(".") + 1));
}

/**
 * Late binding: a pilot thread that says it is ready gets the best activated
 * job of its site pushed at once, or as soon as one is activated. Pilot
 * reports become job events; a report for the wrong pilot or attempt is
 * answered, never applied.
 */
export class Dispatcher implements GatewayHandlers {
  private readonly sessions = new PilotSessions();
  private readonly sites: SiteGate;
  private readonly binder: ThreadBinder;
  private readonly reports: PilotReports;
  private readonly heartbeats: HeartbeatLedger;
  private readonly pilotsSeen: PilotSeenReports;
  private readonly bus: NodeBus;

  constructor(
    private readonly grid: Grid,
    private readonly tokens: TokenRegistry,
    private readonly options: DispatcherOptions,
  ) {
    this.sites = new SiteGate(grid, SITE_READ_MAX_AGE_MS);
    this.reports = new PilotReports(grid);
    this.heartbeats = new HeartbeatLedger(grid.runtime, options.log);
    this.pilotsSeen = new PilotSeenReports(grid.runtime, options.log);
    grid.setPilotCounter((site) => this.sessions.connectedAt(site));
    this.binder = new ThreadBinder(grid, this.sessions, this.sites, options);
    grid.runtime.onEffect("pilot.kill", (data) => this.killOnPilot(data));
    this.bus = options.bus ?? new LocalNodeBus();
    this.bus.subscribe(PILOT_KILL_TOPIC, (message) => this.killHeard(message));
  }

  /** Stops binding work, and resolves once the dispatches on their way have reached their pilots. */
  async close(): Promise<void> {
    const dispatched = this.binder.close();
    this.heartbeats.close();
    this.pilotsSeen.close();
    await dispatched;
  }

  /** Sessions registered at the site (hello to disconnect): brokerage asks for every site per job, so O(1). */
  connectedAt(site: string): number {
    return this.sessions.connectedAt(site);
  }

  connectedPilots(): { pilotId: string; site: string; ready: Thread[]; draining: boolean }[] {
    return this.sessions.list();
  }

  /** Observes activation -> push latency (metrics, benchmarks). */
  onDispatch(listener: (site: string, ms: number) => void): () => void {
    return this.binder.onDispatch(listener);
  }

  async authenticate(token: string, _request: IncomingMessage): Promise<PilotPrincipal | null> {
    const principal = this.tokens.lookup(token);
    return principal?.kind === "pilot" ? { site: principal.site, tokenId: principal.tokenId } : null;
  }

  async onHello(session: PilotSession, _hello: PilotHello, _resumed: boolean): Promise<WelcomeJob[]> {
    this.sessions.register(session, this.grid.runtime.clock.nowMs());
    // Read now, so that the activation that offers this pilot a job finds the site known.
    void this.sites.fresh(session.site).catch(() => {});
    this.pilotsSeen.note(session.site, session.pilotId);
    const held = await this.grid.runtime.readIndex(queueNames.pilotJobs(session.pilotId), 0, 100);
    return held.map((e) => ({
      jobId: e.member,
      attempt: attemptOf(e.member),
      thread: e.score === THREAD_SCORE.secondary ? "secondary" : "primary",
    }));
  }

  onDisconnect(session: PilotSession, reason: string): void {
    this.sessions.unregister(session);
    this.options.log.info({ pilotId: session.pilotId, site: session.site, reason }, "pilot disconnected");
  }

  async onMessage(session: PilotSession, message: PilotReport): Promise<void> {
    const entry = this.sessions.get(session.pilotId);
    if (!entry) throw new GatewayRefusal("NOT_READY", "session is not registered");
    const atMs = this.grid.runtime.clock.nowMs();
    switch (message.type) {
      case "pilot.ready":
        if (entry.draining) return;
        if (message.thread === "secondary" && !session.hello.multitask) {
          throw new GatewayRefusal("SCHEMA", "thread: a pilot without multitask has no secondary thread");
        }
        this.sessions.markReady(entry, message.thread);
        this.pilotsSeen.note(session.site, session.pilotId);
        void this.binder.fillPilot(entry);
        return;
      case "pilot.draining":
        this.sessions.markDraining(entry);
        return;
      case "job.ack":
        if (entry.pushed.get(message.jobId) === message.attempt) return;
        await this.reports.checkOwnership(session, message.jobId, message.attempt);
        return;
      case "job.status":
        await this.reports.report(session, message, {
          type: `pilot.${message.state}`,
          pilotId: session.pilotId,
          attempt: message.attempt,
          atMs,
        });
        return;
      case "job.heartbeat":
        if (
          this.heartbeats.hold({
            jobId: message.jobId,
            pilotId: session.pilotId,
            attempt: message.attempt,
            atMs,
            eventId: reportEventId(session, message),
          })
        )
          return;
        await this.reports.report(session, message, {
          type: "pilot.heartbeat",
          pilotId: session.pilotId,
          attempt: message.attempt,
          atMs,
        });
        return;
      case "job.ended":
        await this.reports.report(session, message, endedEvent(session, message, atMs));
        entry.pushed.delete(message.jobId);
        return;
    }
  }

  private async killOnPilot(data: unknown): Promise<void> {
    const kill = validate(pilotKillSchema, data, "pilot.kill");
    if (this.pushKill(kill) || !kill.pilotId) return;
    // A pilot connected to another node: that node pushes it. Should the notice be lost (or the pilot
    // be connected nowhere), the pilot learns it at its next report, answered with a kill.
    this.bus.publish(PILOT_KILL_TOPIC, JSON.stringify(kill));
  }

  /** Another node's kill for a pilot that may be connected here. */
  private killHeard(message: string): void {
    let kill: z.infer<typeof pilotKillSchema>;
    try {
      kill = validate(pilotKillSchema, JSON.parse(message), "pilot-kill notice");
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "unreadable pilot-kill notice ignored");
      return;
    }
    this.pushKill(kill);
  }

  /** Pushes the kill to its pilot when it is connected to this node; false when it is not. */
  private pushKill(kill: z.infer<typeof pilotKillSchema>): boolean {
    const entry = kill.pilotId ? this.sessions.get(kill.pilotId) : undefined;
    if (!entry) return false;
    entry.pushed.delete(kill.jobId);
    entry.session.push({ type: "job.kill", jobId: kill.jobId, attempt: kill.attempt, reason: kill.reason });
    return true;
  }

  /**
   * Tells the site's pilots on this node to finish their work and exit; the
   * other nodes' pilots hear it from the site's `drain` when they next ask
   * for work. Answers how many were told here.
   */
  drainSite(site: string, reason: string): number {
    let told = 0;
    for (const entry of this.sessions.atSite(site)) {
      if (entry.draining) continue;
      this.sessions.drain(entry, reason);
      told++;
    }
    return told;
  }
}
