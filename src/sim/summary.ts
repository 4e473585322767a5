/**
 * A variant's figures once its run ends (waits, throughput, utilisation per
 * site), computed from what the tracker and the sampler counted as the run went.
 */
import type { ErrorClass } from "../actors/shared/schemas.js";
import type { JobType } from "../brokerage/types.js";
import type { JobTracker } from "./job-tracker.js";
import type { MetricsSampler } from "./metrics.js";
import type { ResolvedScenario, ResolvedVariant } from "./scenario.js";
import type { SimTransfers } from "./sim-transfers.js";
import { type QuantileSummary, round, summarize } from "./stats.js";
import type { StorageLedger } from "./storage-ledger.js";
import type { SlotMeter } from "./time-integral.js";
import type { Topology } from "./topology.js";
import type { WorkloadGenerator } from "./workload-generator.js";

const DAY_MS = 86_400_000;

export interface WaitSummary {
  count: number;
  meanSec: number;
  p50Sec: number;
  p90Sec: number;
  p99Sec: number;
  maxSec: number;
}

export interface SiteSummary {
  site: string;
  slots: number;
  /** Busy slot time (a payload running) over slot time. */
  cpuUtilisation: number;
  /** Slot time held by pilots (starting, idle or busy) over slot time. */
  slotOccupancy: number;
  finishedJobs: number;
  storagePeakBytes: number;
}

export interface VariantSummary {
  variant: string;
  description: string;
  strategy: { pilots: string; analysisPilotEvery?: number; shortQueue?: object; multitask?: object };
  simulatedHours: number;
  jobs: {
    submitted: Record<JobType, number>;
    /** Logical jobs (a retry is the same job) by how they ended, and those still live at the end. */
    finished: Record<JobType, number>;
    failed: Record<JobType, number>;
    cancelled: Record<JobType, number>;
    closed: Record<JobType, number>;
    live: Record<JobType, number>;
    attempts: { created: number; finished: number; failed: number; cancelled: number; closed: number };
  };
  throughput: { finishedJobsPerDay: number; productionPerDay: number; analysisPerDay: number };
  cpu: {
    slots: number;
    utilisation: number;
    slotOccupancy: number;
    /** Mean and 10th percentile of per-interval utilisation while production work was queued (after the first hour). */
    whileQueued: { intervals: number; mean: number | null; p10: number | null };
    bySite: SiteSummary[];
  };
  waitTimes: Record<JobType, WaitSummary | null>;
  runTimes: Record<JobType, WaitSummary | null>;
  failures: {
    attemptsEnded: number;
    failedAttempts: number;
    failedPercent: number;
    byClass: Partial<Record<ErrorClass, { count: number; percent: number }>>;
    /**
     * The scenario's failure chances by class, lowest and highest over its
     * sites, in percent: per job attempt at the site (per file for stage-in),
     * what the observed shares above come from.
     */
    configured: Partial<Record<ErrorClass, { minPercent: number; maxPercent: number }>>;
    /** Logical jobs that failed for good, over logical jobs that ended. */
    finalFailedPercent: number;
  };
  transfers: {
    files: number;
    failedFiles: number;
    bytes: number;
    topLinks: { link: string; bytes: number }[];
  };
  server: { refusals: Record<string, number> };
  invariants: { checks: number; violations: 0 };
}

export interface SummaryInput {
  scenario: ResolvedScenario;
  variant: ResolvedVariant;
  durationMs: number;
  tracker: JobTracker;
  topology: Topology;
  meters: Map<string, SlotMeter>;
  ledger: StorageLedger;
  transfers: SimTransfers;
  generator: WorkloadGenerator;
  refusals: Map<string, number>;
  invariantChecks: number;
  nowMs: number;
  sampler: MetricsSampler;
}

function waits(values: number[]): WaitSummary | null {
  const s: QuantileSummary | null = summarize(values);
  if (!s) return null;
  return {
    count: s.count,
    meanSec: round(s.mean / 1000, 1),
    p50Sec: round(s.p50 / 1000, 1),
    p90Sec: round(s.p90 / 1000, 1),
    p99Sec: round(s.p99 / 1000, 1),
    maxSec: round(s.max / 1000, 1),
  };
}

function byType(counts: { production: number; analysis: number } | undefined): Record<JobType, number> {
  return { production: counts?.production ?? 0, analysis: counts?.analysis ?? 0 };
}

function total(counts: { production: number; analysis: number } | undefined): number {
  return (counts?.production ?? 0) + (counts?.analysis ?? 0);
}

export function summarizeVariant(input: SummaryInput): VariantSummary {
  const { tracker: t, topology, meters, durationMs, nowMs, variant } = input;
  const days = durationMs / DAY_MS;
  let slots = 0;
  let busyArea = 0;
  let occupiedArea = 0;
  const bySite: SiteSummary[] = topology.sites.map((site) => {
    const meter = meters.get(site.name)!;
    const busy = meter.busy.area(nowMs);
    const occupied = meter.occupied.area(nowMs);
    slots += site.slots;
    busyArea += busy;
    occupiedArea += occupied;
    const queues = site.partitions.flatMap((p) => [
      p.queue.name,
      ...(p.analysisQueue ? [p.analysisQueue.name] : []),
    ]);
    return {
      site: site.name,
      slots: site.slots,
      cpuUtilisation: round(busy / (site.slots * durationMs)),
      slotOccupancy: round(occupied / (site.slots * durationMs)),
      finishedJobs: [...new Set(queues)].reduce((n, q) => n + total(t.finishedBySite.get(q)), 0),
      storagePeakBytes: input.ledger.peak(site.name),
    };
  });
  const attempts = {
    created: t.attemptsCreated.production + t.attemptsCreated.analysis,
    finished: total(t.attemptOutcomes.get("finished")),
    failed: total(t.attemptOutcomes.get("failed")),
    cancelled: total(t.attemptOutcomes.get("cancelled")),
    closed: total(t.attemptOutcomes.get("closed")),
  };
  const attemptsEnded = attempts.finished + attempts.failed + attempts.cancelled + attempts.closed;
  const byClass: VariantSummary["failures"]["byClass"] = {};
  for (const [errorClass, counts] of [...t.failuresByClass].sort((a, b) => a[0].localeCompare(b[0]))) {
    const count = total(counts);
    byClass[errorClass] = { count, percent: round((100 * count) / Math.max(1, attemptsEnded), 2) };
  }
  const logicalEnded =
    t.endedCount("finished") + t.endedCount("failed") + t.endedCount("cancelled") + t.endedCount("closed");
  const finished = byType(t.logicalOutcomes.get("finished"));
  const strategy = variant.strategy;
  return {
    variant: variant.name,
    description: variant.description,
    strategy: {
      pilots: strategy.pilots,
      ...(strategy.pilots === "oneInN" ? { analysisPilotEvery: strategy.analysisPilotEvery } : {}),
      ...(strategy.pilots === "shortQueue" ? { shortQueue: strategy.shortQueue } : {}),
      ...(strategy.pilots === "multitask" ? { multitask: strategy.multitask } : {}),
    },
    simulatedHours: round(durationMs / 3_600_000, 3),
    jobs: {
      submitted: { ...input.generator.submittedByType },
      finished,
      failed: byType(t.logicalOutcomes.get("failed")),
      cancelled: byType(t.logicalOutcomes.get("cancelled")),
      closed: byType(t.logicalOutcomes.get("closed")),
      live: { ...t.logicalLive },
      attempts,
    },
    throughput: {
      finishedJobsPerDay: round((finished.production + finished.analysis) / days, 1),
      productionPerDay: round(finished.production / days, 1),
      analysisPerDay: round(finished.analysis / days, 1),
    },
    cpu: {
      slots,
      utilisation: round(busyArea / (slots * durationMs)),
      slotOccupancy: round(occupiedArea / (slots * durationMs)),
      whileQueued: utilisationWhileQueued(input.sampler),
      bySite,
    },
    waitTimes: { production: waits(t.waitsMs.production), analysis: waits(t.waitsMs.analysis) },
    runTimes: { production: waits(t.runMs.production), analysis: waits(t.runMs.analysis) },
    failures: {
      attemptsEnded,
      failedAttempts: attempts.failed,
      failedPercent: round((100 * attempts.failed) / Math.max(1, attemptsEnded), 2),
      byClass,
      configured: configuredFailures(input.scenario),
      finalFailedPercent: round((100 * t.endedCount("failed")) / Math.max(1, logicalEnded), 2),
    },
    transfers: {
      files: input.transfers.totals.files,
      failedFiles: input.transfers.totals.failedFiles,
      bytes: input.transfers.totals.bytes,
      topLinks: [...input.transfers.totals.bytesByLink]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 10)
        .map(([link, bytes]) => ({ link, bytes })),
    },
    server: { refusals: Object.fromEntries([...input.refusals].sort((a, b) => a[0].localeCompare(b[0]))) },
    invariants: { checks: input.invariantChecks, violations: 0 },
  };
}

/** The scenario's failure chances per class over its sites (classes no site sets are left out). */
function configuredFailures(scenario: ResolvedScenario): VariantSummary["failures"]["configured"] {
  const configured: VariantSummary["failures"]["configured"] = {};
  const classes = ["lostHeartbeat", "payload", "pilot", "stagein", "stageout"] as const;
  for (const errorClass of classes) {
    const chances = scenario.sites.map((site) => site.failures[errorClass]);
    if (chances.every((p) => p === 0)) continue;
    configured[errorClass] = {
      minPercent: round(100 * Math.min(...chances), 3),
      maxPercent: round(100 * Math.max(...chances), 3),
    };
  }
  return configured;
}

/** Per-interval utilisation while production work waited: the "steady while queued" figure. */
export function utilisationWhileQueued(sampler: MetricsSampler): VariantSummary["cpu"]["whileQueued"] {
  const values: number[] = [];
  for (let i = 1; i < sampler.grid.length; i++) {
    const before = sampler.grid[i - 1]!;
    const now = sampler.grid[i]!;
    if (now.hour <= 1) continue;
    const waiting = before.defined + before.assigned + before.activated;
    if (waiting > 0) values.push(now.utilisation);
  }
  if (values.length === 0) return { intervals: 0, mean: null, p10: null };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    intervals: values.length,
    mean: round(values.reduce((a, b) => a + b, 0) / values.length),
    p10: round(sorted[Math.max(0, Math.ceil(0.1 * sorted.length) - 1)]!),
  };
}
