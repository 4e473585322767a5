/**
 * The pilots connected to this node, in memory: each one's session, the
 * threads that asked for work and have none, and whether it drains, indexed
 * by site so that brokerage's count of a site's pilots and an activation's
 * look for a waiting thread cost O(1) per job, never a scan of every pilot.
 *
 * Not to be confused with `pilot-registry.ts`: that one publishes a summary
 * of these sessions to the shared store every few seconds so that any node
 * (the monitor, the API) can list every node's pilots; this one is the
 * dispatcher's own live view, read and changed on every dispatch, and knows
 * nothing of other nodes.
 */
import type { PilotSession } from "../gateway/handlers.js";
import type { Thread } from "../protocol/messages.js";

export interface PilotEntry {
  session: PilotSession;
  /** Threads that asked for work and have none. */
  ready: Set<Thread>;
  draining: boolean;
  /** A drain of its site asked for since reaches it; one asked before it came does not. */
  connectedAtMs: number;
  /** Jobs pushed to this session (job id -> attempt): its ack needs no read of the job. */
  pushed: Map<string, number>;
}

export class PilotSessions {
  private readonly pilots = new Map<string, PilotEntry>();
  /** The same entries by site: brokerage counts a site's pilots and activations fill them, per job, so no scan of every pilot. */
  private readonly pilotsBySite = new Map<string, Set<PilotEntry>>();
  /** Per site, the sessions with a thread asking for work: an activation looks at these only. */
  private readonly ready = new Map<string, Set<PilotEntry>>();
  /** The same map for the binder to read: changed only through `markReady` and `markBusy`. */
  readonly readyBySite: ReadonlyMap<string, ReadonlySet<PilotEntry>> = this.ready;

  get(pilotId: string): PilotEntry | undefined {
    return this.pilots.get(pilotId);
  }

  /** A new session of the pilot, replacing (and closing) any earlier one. */
  register(session: PilotSession, connectedAtMs: number): PilotEntry {
    const previous = this.pilots.get(session.pilotId);
    previous?.session.close(4002, "replaced by a newer session");
    if (previous) {
      this.pilotsBySite.get(previous.session.site)?.delete(previous);
      this.ready.get(previous.session.site)?.delete(previous);
    }
    const entry: PilotEntry = {
      session,
      ready: new Set(),
      draining: false,
      connectedAtMs,
      pushed: new Map(),
    };
    this.pilots.set(session.pilotId, entry);
    let atSite = this.pilotsBySite.get(session.site);
    if (!atSite) {
      atSite = new Set();
      this.pilotsBySite.set(session.site, atSite);
    }
    atSite.add(entry);
    return entry;
  }

  /** Forgets the session, unless a resumed session has replaced it already. */
  unregister(session: PilotSession): void {
    const entry = this.pilots.get(session.pilotId);
    if (entry?.session === session) {
      this.pilots.delete(session.pilotId);
      this.pilotsBySite.get(session.site)?.delete(entry);
      this.ready.get(session.site)?.delete(entry);
    }
  }

  /** Whether the entry is still the pilot's current session. */
  isCurrent(entry: PilotEntry): boolean {
    return this.pilots.get(entry.session.pilotId) === entry;
  }

  /** Sessions registered at the site (hello to disconnect): brokerage asks for every site per job, so O(1). */
  connectedAt(site: string): number {
    return this.pilotsBySite.get(site)?.size ?? 0;
  }

  atSite(site: string): Iterable<PilotEntry> {
    return this.pilotsBySite.get(site) ?? [];
  }

  list(): { pilotId: string; site: string; ready: Thread[]; draining: boolean }[] {
    return [...this.pilots.values()].map((p) => ({
      pilotId: p.session.pilotId,
      site: p.session.site,
      ready: [...p.ready],
      draining: p.draining,
    }));
  }

  markReady(entry: PilotEntry, thread: Thread): void {
    entry.ready.add(thread);
    let ready = this.ready.get(entry.session.site);
    if (!ready) {
      ready = new Set();
      this.ready.set(entry.session.site, ready);
    }
    ready.add(entry);
  }

  markBusy(entry: PilotEntry, thread: Thread): void {
    entry.ready.delete(thread);
    if (entry.ready.size === 0) this.ready.get(entry.session.site)?.delete(entry);
  }

  /** The pilot finishes what it runs and takes nothing more. */
  markDraining(entry: PilotEntry): void {
    entry.draining = true;
    for (const thread of [...entry.ready]) this.markBusy(entry, thread);
  }

  /** Tells the pilot to finish its work and exit. */
  drain(entry: PilotEntry, reason: string): void {
    this.markDraining(entry);
    entry.session.push({ type: "pilot.drain", reason });
  }
}
