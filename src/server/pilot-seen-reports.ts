/**
 * Pilot requests told to their site actor, which counts them for brokerage
 * (a site that pilots ask often has free cores now) and for the monitor. One
 * event per request would be one committed transition per pilot that says
 * hello or ready: a site's first request after a quiet spell is told at once
 * (brokerage's "no pilot seen" filter reads its time), and the requests that
 * follow within `flushMs` are told together, as their count, when it ends.
 */
import { refs } from "../actors/shared/names.js";
import type { TimerHandle } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import type { Runtime } from "../runtime/runtime.js";

/** A quarter of the default pilot window's bucket (10 min / 10): the rate keeps its resolution. */
export const PILOT_SEEN_FLUSH_MS = 15_000;

interface SiteRequests {
  lastToldMs: number;
  pending: number;
  lastPilotId: string | null;
  flush: TimerHandle | null;
}

export class PilotSeenReports {
  private readonly sites = new Map<string, SiteRequests>();
  private closed = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly log: Logger,
    private readonly flushMs = PILOT_SEEN_FLUSH_MS,
  ) {}

  /** A pilot of `site` asked for work (a hello or a ready). */
  note(site: string, pilotId: string): void {
    if (this.closed) return;
    const nowMs = this.runtime.clock.nowMs();
    let requests = this.sites.get(site);
    if (!requests) {
      requests = { lastToldMs: Number.NEGATIVE_INFINITY, pending: 0, lastPilotId: null, flush: null };
      this.sites.set(site, requests);
    }
    requests.pending++;
    requests.lastPilotId = pilotId;
    if (requests.flush) return;
    const waitMs = requests.lastToldMs + this.flushMs - nowMs;
    if (waitMs <= 0) {
      this.tell(site, requests);
      return;
    }
    requests.flush = this.runtime.clock.setTimer(() => {
      requests.flush = null;
      this.tell(site, requests);
    }, waitMs);
  }

  close(): void {
    this.closed = true;
    for (const requests of this.sites.values())
      if (requests.flush) this.runtime.clock.clearTimer(requests.flush);
    this.sites.clear();
  }

  private tell(site: string, requests: SiteRequests): void {
    if (this.closed || requests.pending === 0) return;
    const atMs = this.runtime.clock.nowMs();
    const event = {
      type: "pilot.seen",
      ...(requests.lastPilotId ? { pilotId: requests.lastPilotId } : {}),
      ...(requests.pending > 1 ? { requests: requests.pending } : {}),
      atMs,
    };
    requests.lastToldMs = atMs;
    requests.pending = 0;
    this.runtime.send(refs.site(site), event).catch((err: unknown) => {
      this.log.debug({ site, err: (err as Error).message }, "pilot.seen refused");
    });
  }
}
