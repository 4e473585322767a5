/**
 * The seed's production and analysis job summaries per site: live jobs per
 * state (the `jobs:` counters, split by the analysis lane's own counters)
 * and the jobs that ended in the last 1, 12 or 24 hours with the failures
 * split total / transfer / other (the site actors' hourly counts). One read
 * per site and one of the counters per shard; no job is read.
 */

import { ANALYSIS_JOBS_PREFIX, parseAnalysisJobsCounter } from "../actors/job/lane-counters.js";
import { emptyLane, hoursInWindow } from "../actors/site/hourly.js";
import type { LaneOutcomes } from "../actors/site/schema.js";
import type { Runtime } from "../runtime/runtime.js";
import type { LiveJobs, SiteState } from "../workload/sites.js";
import { failurePercent } from "./summary.js";

const LANES = ["production", "analysis"] as const;
type Lane = (typeof LANES)[number];

/** Live analysis jobs per site and state. */
export async function liveAnalysisJobs(runtime: Runtime): Promise<Map<string, LiveJobs>> {
  const bySite = new Map<string, LiveJobs>();
  for (const [name, count] of await runtime.readCounters(ANALYSIS_JOBS_PREFIX)) {
    const parsed = parseAnalysisJobsCounter(name);
    if (!parsed) continue;
    const jobs = bySite.get(parsed.site) ?? {};
    jobs[parsed.state as keyof LiveJobs] = count;
    bySite.set(parsed.site, jobs);
  }
  return bySite;
}

function laneRow(live: LiveJobs, ended: LaneOutcomes) {
  return {
    live,
    ended,
    failurePercent: failurePercent(ended.finished, ended.failed, ended.transferFailed),
  };
}

/** Adds every count of `from` into `into`, field by field. */
function addInto(into: object, from: object): void {
  const sums = into as Record<string, number>;
  for (const [key, n] of Object.entries(from as Record<string, number | undefined>))
    sums[key] = (sums[key] ?? 0) + (n ?? 0);
}

function endedIn(site: SiteState, lane: Lane, nowMs: number, hours: number): LaneOutcomes {
  const ended = emptyLane();
  for (const bucket of hoursInWindow(site.hours, nowMs, hours)) addInto(ended, bucket[lane]);
  return ended;
}

export function jobSummary(
  sites: SiteState[],
  analysisLive: Map<string, LiveJobs>,
  hours: number,
  nowMs: number,
) {
  const totals = Object.fromEntries(
    LANES.map((lane) => [lane, { live: {} as LiveJobs, ended: emptyLane() }]),
  ) as Record<Lane, { live: LiveJobs; ended: LaneOutcomes }>;
  const rows = sites.map((site) => {
    const analysis = analysisLive.get(site.name) ?? {};
    const production: LiveJobs = {};
    for (const [state, n] of Object.entries(site.jobs))
      production[state as keyof LiveJobs] = (n ?? 0) - (analysis[state as keyof LiveJobs] ?? 0);
    const live = { production, analysis };
    const row = { site: site.name, status: site.status } as Record<string, unknown>;
    for (const lane of LANES) {
      const ended = endedIn(site, lane, nowMs, hours);
      addInto(totals[lane].live, live[lane]);
      addInto(totals[lane].ended, ended);
      row[lane] = laneRow(live[lane], ended);
    }
    return row as { site: string; status: string } & Record<Lane, ReturnType<typeof laneRow>>;
  });
  return {
    hours,
    nowMs,
    sites: rows,
    total: {
      production: laneRow(totals.production.live, totals.production.ended),
      analysis: laneRow(totals.analysis.live, totals.analysis.ended),
    },
  };
}
