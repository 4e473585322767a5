/**
 * The errors page's table: failures per site, error class and code over the
 * last 1, 12 and 24 hours, with the last job that failed so, from the site
 * actors' hourly counts (one read per site, no job read).
 */
import { hoursInWindow } from "../actors/site/hourly.js";
import type { ErrorRow } from "../monitor/shapes.js";
import type { SiteState } from "../workload/sites.js";

export const ERROR_WINDOWS_HOURS = [1, 12, 24] as const;

export function errorSummary(sites: SiteState[], nowMs: number) {
  const rows: ErrorRow[] = [];
  for (const site of sites) {
    const byKey = new Map<string, ErrorRow>();
    for (const bucket of hoursInWindow(site.hours, nowMs, 24)) {
      const ageHours = Math.floor((nowMs - bucket.startMs) / 3_600_000);
      for (const [key, { count, lastJobId }] of Object.entries(bucket.errors)) {
        const split = key.indexOf(":");
        let row = byKey.get(key);
        if (!row) {
          row = {
            site: site.name,
            errorClass: key.slice(0, split),
            errorCode: key.slice(split + 1),
            counts: { h1: 0, h12: 0, h24: 0 },
            lastJobId,
            lastHourMs: bucket.startMs,
          };
          byKey.set(key, row);
        }
        row.counts.h24 += count;
        if (ageHours < 12) row.counts.h12 += count;
        if (ageHours < 1) row.counts.h1 += count;
        if (bucket.startMs >= row.lastHourMs) {
          row.lastHourMs = bucket.startMs;
          row.lastJobId = lastJobId;
        }
      }
    }
    rows.push(...byKey.values());
  }
  rows.sort(
    (a, b) => b.counts.h1 - a.counts.h1 || b.counts.h24 - a.counts.h24 || a.site.localeCompare(b.site),
  );
  return { nowMs, windowsHours: ERROR_WINDOWS_HOURS, errors: rows };
}
