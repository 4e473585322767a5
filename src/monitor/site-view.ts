/** A site's view for the monitor and the API: its state, queue depths per share, live jobs. */
import { failureSummary, pilotRequestsInWindow } from "../actors/site/stats.js";
import type { Runtime } from "../runtime/runtime.js";
import { queueNames } from "../store/queue-index.js";
import { readContext, type WorkloadContext } from "../workload/context.js";
import { liveJobsBySite, type SiteState, siteNames } from "../workload/sites.js";
import type { PilotView, SiteView } from "./shapes.js";

/** A site's queued jobs by lane, summed over its share queues. */
export async function queueDepthOf(runtime: Runtime, site: string, shares: readonly string[]) {
  const depth = (lane: "production" | "analysis") =>
    Promise.all(shares.map((share) => runtime.indexSize(queueNames.siteQueue(site, lane, share)))).then(
      (sizes) => sizes.reduce((sum, n) => sum + n, 0),
    );
  const [production, analysis] = await Promise.all([depth("production"), depth("analysis")]);
  return { production, analysis };
}

export function siteViewOf(
  site: SiteState,
  pilots: PilotView[],
  queueDepth: SiteView["queueDepth"],
  nowMs: number,
): SiteView {
  const window = site.thresholds.failureWindowMs;
  const recent = failureSummary(site.outcomes, nowMs, window);
  const inWindow = pilotRequestsInWindow(site, nowMs);
  const queued = queueDepth.production + queueDepth.analysis + (site.jobs.activated ?? 0);
  const recentErrors: Record<string, number> = {};
  for (const [errorClass, n] of Object.entries(recent.errorClasses)) recentErrors[errorClass] = n ?? 0;
  return {
    name: site.name,
    status: site.status,
    statusInfo: site.statusInfo,
    slots: site.resources.slots,
    jobs: site.jobs,
    totals: site.totals,
    failurePercent: Math.round(recent.failureFraction * 1000) / 10,
    recentJobs: recent.jobs,
    recentErrors,
    failureWindowMs: window,
    pilots,
    readyThreads: pilots.reduce((sum, p) => sum + p.ready.length, 0),
    queueDepth,
    pilotRequests: {
      inWindow,
      windowMs: site.thresholds.pilotWindowMs,
      lastSeenAtMs: site.pilots.lastSeenAtMs,
    },
    starved: queued > 0 && inWindow === 0,
    incidents: site.incidents,
  };
}

/** Every site's view, read from the store (site actors) and this node (pilots, queues). */
export async function readSiteViews(
  ctx: Pick<WorkloadContext, "index" | "runtime" | "settings">,
  pilots: PilotView[],
): Promise<SiteView[]> {
  const nowMs = ctx.runtime.clock.nowMs();
  const live = await liveJobsBySite(ctx);
  const views = await Promise.all(
    (await siteNames(ctx)).sort().map(async (name) => {
      const [site, depth] = await Promise.all([
        readContext(ctx, "site", name),
        queueDepthOf(ctx.runtime, name, ctx.settings.queueShares),
      ]);
      return site
        ? siteViewOf(
            { ...site.context, jobs: live.get(name) ?? {} },
            pilots.filter((p) => p.site === name),
            depth,
            nowMs,
          )
        : null;
    }),
  );
  return views.filter((v): v is SiteView => v !== null);
}
