/**
 * What brokerage reads of a site: its actor's state mapped onto the brokerage
 * snapshot. `connectedPilots` comes from the dispatcher (pilots are sessions,
 * not counted in the site actor).
 */
import type { SiteContext } from "../actors/site/schema.js";
import {
  outcomeCounts,
  outcomeCountsChangeAtMs,
  pilotRequestsChangeAtMs,
  pilotRequestsInWindow,
} from "../actors/site/stats.js";
import type { SiteSnapshot } from "../brokerage/types.js";
import type { SiteState } from "./sites.js";

/** The live-job states a snapshot reads of a site: the others' counts do not change it. */
export const SNAPSHOT_JOB_STATES = [
  "defined",
  "assigned",
  "activated",
  "starting",
  "throttled",
  "running",
  "sent",
  "transferring",
] as const satisfies readonly (keyof SiteState["jobs"])[];

/**
 * The first time after `nowMs` at which `siteSnapshotOf` of the same site,
 * counts and pilots differs: when a bucket of its windows (outcomes, pilot
 * requests) leaves them. Infinity when none will.
 */
export function siteSnapshotChangeAtMs(site: SiteContext, nowMs: number): number {
  return Math.min(
    outcomeCountsChangeAtMs(site.outcomes, nowMs, site.thresholds.failureWindowMs),
    pilotRequestsChangeAtMs(site, nowMs),
  );
}

/** The part of a site's snapshot its live jobs and connected pilots make: what changes most often. */
export function liveJobStats(jobs: SiteState["jobs"], connectedPilots: number) {
  const n = (state: keyof SiteState["jobs"]) => jobs[state] ?? 0;
  return {
    queued: n("defined") + n("assigned") + n("activated") + n("starting") + n("throttled"),
    activated: n("activated"),
    assigned: n("assigned"),
    running: n("running") + n("sent") + n("starting"),
    pilots: connectedPilots,
    transferring: n("transferring"),
  };
}

export function siteSnapshotOf(site: SiteState, connectedPilots: number, nowMs: number): SiteSnapshot {
  const live = liveJobStats(site.jobs, connectedPilots);
  const recent = outcomeCounts(site.outcomes, nowMs, site.thresholds.failureWindowMs);
  const windowMin = site.thresholds.pilotWindowMs / 60_000;
  const recentFailed: Record<string, number> = {};
  for (const [errorClass, count] of Object.entries(recent.errorClasses))
    recentFailed[errorClass] = count ?? 0;
  return {
    name: site.name,
    status: site.status,
    resources: {
      slots: site.resources.slots,
      memoryMbPerSlot: site.resources.memoryPerSlotMb,
      diskMb: site.resources.diskMb,
      maxWalltimeSec: site.resources.walltimeSec.max,
      minWalltimeSec: site.resources.walltimeSec.min,
      releases: site.resources.releases,
    },
    stats: {
      queued: live.queued,
      activated: live.activated,
      assigned: live.assigned,
      running: live.running,
      pilots: live.pilots,
      pilotRequestRatePerMin: windowMin > 0 ? pilotRequestsInWindow(site, nowMs) / windowMin : 0,
      ...(site.pilots.lastSeenAtMs !== null ? { lastPilotSeenMs: site.pilots.lastSeenAtMs } : {}),
      transferring: live.transferring,
      recentFinished: recent.finished,
      recentFailed,
      recentClosed: recent.closed,
    },
  };
}
