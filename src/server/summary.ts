/**
 * PanDA's production job summary, per site and over the grid: the page
 * operators know, computed from the site actors' outcome counts at read
 * time, so nothing on the job path keeps it.
 */
import { outcomeCounts } from "../actors/site/stats.js";
import type { SiteState } from "../workload/sites.js";

const TRANSFER_CLASSES = new Set(["stagein", "stageout"]);

/** Percent with one decimal, 0 when there is nothing to divide. */
function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((1000 * part) / whole) / 10;
}

/**
 * PanDA's production job summary per site: live jobs per state, and jobs
 * that ended within the window with the failure percentage split total /
 * transfer (stage-in and stage-out) / other. Read from the site actors'
 * outcome counts, which reach back `failureWindowMs` (1 h by default) in
 * buckets of a twelfth of it: a longer window is answered with what the site
 * kept, and `effectiveWindowMs` says how far that is.
 */
export function siteSummary(site: SiteState, windowMs: number, nowMs: number) {
  const effectiveWindowMs = Math.min(windowMs, site.thresholds.failureWindowMs);
  const { finished, failed, closed, errorClasses } = outcomeCounts(site.outcomes, nowMs, effectiveWindowMs);
  let transferFailed = 0;
  for (const [errorClass, n] of Object.entries(errorClasses))
    if (TRANSFER_CLASSES.has(errorClass)) transferFailed += n ?? 0;
  return {
    site: site.name,
    status: site.status,
    effectiveWindowMs,
    live: site.jobs,
    ended: { finished, failed, closed, transferFailed },
    failurePercent: failurePercent(finished, failed, transferFailed),
  };
}

export function failurePercent(finished: number, failed: number, transferFailed: number) {
  const ended = finished + failed;
  return {
    total: percent(failed, ended),
    transfer: percent(transferFailed, ended),
    other: percent(failed - transferFailed, ended),
  };
}

export function gridSummary(sites: SiteState[], windowMs: number, nowMs: number) {
  const rows = sites.map((site) => siteSummary(site, windowMs, nowMs));
  const live: Record<string, number> = {};
  let finished = 0;
  let failed = 0;
  let closed = 0;
  let transferFailed = 0;
  for (const row of rows) {
    for (const [state, count] of Object.entries(row.live)) live[state] = (live[state] ?? 0) + (count ?? 0);
    finished += row.ended.finished;
    failed += row.ended.failed;
    closed += row.ended.closed;
    transferFailed += row.ended.transferFailed;
  }
  return {
    windowMs,
    sites: rows,
    total: {
      live,
      ended: { finished, failed, closed, transferFailed },
      failurePercent: failurePercent(finished, failed, transferFailed),
    },
  };
}
