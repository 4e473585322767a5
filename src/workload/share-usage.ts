/** What operators see of fair share at a site: each share's target beside the running slots it holds and its queue. */
import { shareRunningFrom } from "../actors/job/projections.js";
import { DEFAULT_SHARE } from "../brokerage/shares.js";
import { queueNames } from "../store/queue-index.js";
import type { WorkloadContext } from "./context.js";

export interface ShareUsage {
  name: string;
  /** Its configured part of the site's running slots; 0 for a share no longer configured. */
  targetPercent: number;
  /** Jobs of the share on the site's pilots (sent, starting, running), as committed. */
  running: number;
  /** `running` over every share's at the site, in percent (one decimal). */
  runningPercent: number;
  /** Jobs of the share activated at the site and waiting for a pilot thread. */
  queued: number;
}

/** Every share of the site, in configuration order (a share not configured but holding jobs last). */
export async function shareUsageAt(
  ctx: Pick<WorkloadContext, "runtime" | "settings">,
  site: string,
): Promise<ShareUsage[]> {
  // One read of every counter: each shard's counters are one hash, read whole whatever the prefix.
  const counters = await ctx.runtime.readCounters();
  const counter = (name: string) => counters.get(name) ?? 0;
  const named = new Set<string>();
  for (const name of counters.keys()) {
    const parts = queueNames.shareRunningParts(name);
    if (parts?.site === site) named.add(parts.share);
  }
  const names = [...new Set([...ctx.settings.queueShares, ...named, DEFAULT_SHARE])];
  const running = new Map(names.map((name) => [name, shareRunningFrom(counter, site, name, named)]));
  const total = [...running.values()].reduce((sum, n) => sum + n, 0);
  const targets = new Map(ctx.settings.shares.map((s) => [s.name, s.percent]));
  const usage = await Promise.all(
    names.map(async (name) => {
      const [production, analysis] = await Promise.all(
        (["production", "analysis"] as const).map((lane) =>
          ctx.runtime.indexSize(queueNames.siteQueue(site, lane, name)),
        ),
      );
      const held = running.get(name) ?? 0;
      return {
        name,
        targetPercent: targets.get(name) ?? 0,
        running: held,
        runningPercent: total === 0 ? 0 : Math.round((held / total) * 1000) / 10,
        queued: (production ?? 0) + (analysis ?? 0),
      };
    }),
  );
  // `default` is listed only when it is configured or holds jobs.
  return usage.filter((u) => u.targetPercent > 0 || u.running > 0 || u.queued > 0);
}
