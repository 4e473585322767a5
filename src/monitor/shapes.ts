/**
 * What the monitor's server side sends its browser side. Plain types with no
 * imports, so the browser bundle's type check can read them too.
 */

/** What a browser hears of one actor in one flush: its latest transition and how many it made. */
export interface LiveChange {
  kind: string;
  id: string;
  version: number;
  atMs: number;
  event: string;
  from: string | null;
  to: string;
  refused: boolean;
  /** Transitions of this actor folded into this change since the previous flush. */
  transitions: number;
}

/** A connected pilot as the dispatcher knows it. */
export interface PilotView {
  pilotId: string;
  site: string;
  ready: string[];
  draining: boolean;
}

export interface SiteIncidentView {
  openedAtMs: number | null;
  closedAtMs: number | null;
  closedBy: string | null;
  jobs: number;
  failed: number;
  failureFraction: number;
  errorClasses: Partial<Record<string, number>>;
}

/** One site as the monitor shows it: the site actor's numbers plus what only the node knows (pilots, queues). */
export interface SiteView {
  name: string;
  status: string;
  statusInfo: { sinceMs: number | null; by: string; reason: string };
  slots: number;
  /** Live jobs here per state. */
  jobs: Partial<Record<string, number>>;
  totals: { finished: number; failed: number; cancelled: number; closed: number };
  /** Failed / (finished + failed) over the site's failure window, in percent. */
  failurePercent: number;
  recentJobs: number;
  recentErrors: Record<string, number>;
  failureWindowMs: number;
  pilots: PilotView[];
  readyThreads: number;
  queueDepth: { production: number; analysis: number };
  pilotRequests: { inWindow: number; windowMs: number; lastSeenAtMs: number | null };
  /** The seed's red flag: work is waiting here and no pilot has asked for any in the last window. */
  starved: boolean;
  incidents: SiteIncidentView[];
}

/** One point of the monitor's charts. */
export interface Sample {
  atMs: number;
  /** Jobs this node saw reach `finished` / `failed` since the previous sample. */
  finished: number;
  failed: number;
  sites: Record<string, { queued: number; running: number; pilotRequests: number }>;
}

/** One line of the errors page: failures of one class and code at one site. */
export interface ErrorRow {
  site: string;
  errorClass: string;
  errorCode: string;
  /** Failures in the last 1, 12 and 24 hours (each with the hour in progress). */
  counts: { h1: number; h12: number; h24: number };
  lastJobId: string;
  /** The start of the newest hour with such a failure. */
  lastHourMs: number;
}
