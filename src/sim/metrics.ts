/**
 * Samples the grid every `sampleEvery` of simulated time into rows for the
 * CSV files and the report's charts.
 */
import type { JobTracker } from "./job-tracker.js";
import type { SimTransfers } from "./sim-transfers.js";
import { quantile, round, sortedCopy } from "./stats.js";
import type { SlotMeter } from "./time-integral.js";
import type { Topology } from "./topology.js";

/** One sample of the whole grid. Times in hours since the start, waits in seconds. */
export interface GridSample {
  hour: number;
  defined: number;
  assigned: number;
  activated: number;
  throttled: number;
  sent: number;
  running: number;
  runningProduction: number;
  runningAnalysis: number;
  finishing: number;
  finishedTotal: number;
  failedTotal: number;
  pilots: number;
  busySlots: number;
  /** Busy slot time over the interval / slots x interval. */
  utilisation: number;
  analysisWaitP50Sec: number | null;
  analysisWaitP90Sec: number | null;
  productionWaitP50Sec: number | null;
  /** Logical jobs that started in the interval, per type. */
  analysisStarted: number;
  transferredBytesTotal: number;
  filesInFlight: number;
}

/** One sample of one physical site (all its queues together). */
export interface SiteSample {
  hour: number;
  site: string;
  runningProduction: number;
  runningAnalysis: number;
  queuedProduction: number;
  queuedAnalysis: number;
  pilots: number;
  busySlots: number;
  utilisation: number;
}

const STATE_GROUPS = {
  defined: ["pending", "defined", "waiting"],
  assigned: ["assigned"],
  activated: ["activated"],
  throttled: ["throttled"],
  sent: ["sent", "starting"],
  running: ["running"],
  finishing: ["holding", "transferring"],
} as const;

export class MetricsSampler {
  readonly grid: GridSample[] = [];
  readonly sites: SiteSample[] = [];
  private readonly lastBusyArea = new Map<string, number>();
  private lastGridBusyArea = 0;
  private lastSampleMs: number;
  private waitCursor = { analysis: 0, production: 0 };

  constructor(
    private readonly startMs: number,
    private readonly tracker: JobTracker,
    private readonly topology: Topology,
    private readonly meters: Map<string, SlotMeter>,
    private readonly transfers: () => SimTransfers,
    private readonly pilotsAt: (site: string) => number,
  ) {
    this.lastSampleMs = startMs;
  }

  sample(nowMs: number): void {
    const t = this.tracker;
    const hour = round((nowMs - this.startMs) / 3_600_000, 4);
    const intervalMs = Math.max(1, nowMs - this.lastSampleMs);
    this.lastSampleMs = nowMs;
    let busySlots = 0;
    let slots = 0;
    let pilots = 0;
    let busyArea = 0;
    for (const site of this.topology.sites) {
      const meter = this.meters.get(site.name)!;
      const area = meter.busy.area(nowMs);
      const utilisation = (area - (this.lastBusyArea.get(site.name) ?? 0)) / (site.slots * intervalMs);
      this.lastBusyArea.set(site.name, area);
      busyArea += area;
      busySlots += meter.busy.level;
      slots += site.slots;
      const running = { production: 0, analysis: 0 };
      const queued = { production: 0, analysis: 0 };
      let sitePilots = 0;
      for (const partition of site.partitions) {
        for (const queue of [partition.queue, partition.analysisQueue]) {
          if (!queue) continue;
          const r = t.runningBySite.get(queue.name);
          const q = t.activatedBySite.get(queue.name);
          running.production += r?.production ?? 0;
          running.analysis += r?.analysis ?? 0;
          queued.production += q?.production ?? 0;
          queued.analysis += q?.analysis ?? 0;
          sitePilots += this.pilotsAt(queue.name);
        }
      }
      pilots += sitePilots;
      this.sites.push({
        hour,
        site: site.name,
        runningProduction: running.production,
        runningAnalysis: running.analysis,
        queuedProduction: queued.production,
        queuedAnalysis: queued.analysis,
        pilots: sitePilots,
        busySlots: meter.busy.level,
        utilisation: round(utilisation),
      });
    }
    const gridUtilisation = (busyArea - this.lastGridBusyArea) / (slots * intervalMs);
    this.lastGridBusyArea = busyArea;
    const analysisWaits = this.newWaits("analysis");
    const productionWaits = this.newWaits("production");
    const transfers = this.transfers();
    this.grid.push({
      hour,
      defined: t.liveIn(STATE_GROUPS.defined),
      assigned: t.liveIn(STATE_GROUPS.assigned),
      activated: t.liveIn(STATE_GROUPS.activated),
      throttled: t.liveIn(STATE_GROUPS.throttled),
      sent: t.liveIn(STATE_GROUPS.sent),
      running: t.liveIn(STATE_GROUPS.running),
      runningProduction: t.liveIn(STATE_GROUPS.running, "production"),
      runningAnalysis: t.liveIn(STATE_GROUPS.running, "analysis"),
      finishing: t.liveIn(STATE_GROUPS.finishing),
      finishedTotal: sumCounts(t.attemptOutcomes.get("finished")),
      failedTotal: sumCounts(t.attemptOutcomes.get("failed")),
      pilots,
      busySlots,
      utilisation: round(gridUtilisation),
      analysisWaitP50Sec: waitQuantile(analysisWaits, 0.5),
      analysisWaitP90Sec: waitQuantile(analysisWaits, 0.9),
      productionWaitP50Sec: waitQuantile(productionWaits, 0.5),
      analysisStarted: analysisWaits.length,
      transferredBytesTotal: transfers.totals.bytes,
      filesInFlight: transfers.inFlight(),
    });
  }

  private newWaits(type: "analysis" | "production"): Float64Array {
    const all = this.tracker.waitsMs[type];
    const fresh = all.slice(this.waitCursor[type]);
    this.waitCursor[type] = all.length;
    return sortedCopy(fresh);
  }
}

function waitQuantile(sorted: Float64Array, q: number): number | null {
  return sorted.length === 0 ? null : round(quantile(sorted, q) / 1000, 1);
}

function sumCounts(counts: { production: number; analysis: number } | undefined): number {
  return counts ? counts.production + counts.analysis : 0;
}
