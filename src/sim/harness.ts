/**
 * Runs one variant of a scenario: a grid (real runtime, actors, brokerage,
 * queue service and dispatcher over MemoryStore) on a virtual clock, with
 * simulated pilots, payloads and transfers. The loop lets the runtime settle
 * completely (no event queued, no commit or store write in flight), then
 * moves time to the next scheduled event. Invariants are checked after every
 * settle; a breach stops the run with the offending actor's history.
 *
 * The store keeps no history: nothing reads it unless an invariant breaks,
 * and encoding every transition's entry cost a quarter of a run's CPU. A
 * breach replays the run (it is deterministic per seed) with history kept up
 * to the same instant, and reports it from there.
 */
import { performance } from "node:perf_hooks";
import { silentLogger } from "../runtime/logger.js";
import { Dispatcher } from "../server/dispatcher.js";
import { TokenRegistry } from "../server/tokens.js";
import { MemoryQueueIndex } from "../store/memory-queue-index.js";
import { MemoryStore } from "../store/memory-store.js";
import { Grid } from "../workload/grid.js";
import { ensureSite } from "../workload/sites.js";
import { BatchPartition } from "./batch-system.js";
import {
  crossCheckTasks,
  historyOf,
  InvariantMonitor,
  InvariantViolationError,
  type Violation,
} from "./invariants.js";
import { JobTracker } from "./job-tracker.js";
import { MetricsSampler } from "./metrics.js";
import { PayloadModel } from "./payload-model.js";
import { SimRandom } from "./random.js";
import { Retirement } from "./retirement.js";
import type { ResolvedScenario, ResolvedVariant } from "./scenario.js";
import { scheduleEvents } from "./scenario-events.js";
import type { PilotEnvironment } from "./sim-pilot.js";
import { SimTransfers } from "./sim-transfers.js";
import { StorageLedger } from "./storage-ledger.js";
import { summarizeVariant, type VariantSummary } from "./summary.js";
import { SlotMeter } from "./time-integral.js";
import { buildTopology, siteActorInput } from "./topology.js";
import { VirtualClock } from "./virtual-clock.js";
import { WorkloadGenerator } from "./workload-generator.js";

/** Simulated time starts here: a fixed instant, so nothing depends on when the run happens. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

/** How long after its end a job attempt (with its dispatch data) is dropped from memory, once no pilot holds it. */
const RETIRE_AFTER_MS = 10 * 60_000;

/** Candidate sites kept in each job's brokerage decision (the chosen, the best scored, the first excluded). */
const RECORDED_CANDIDATES = 5;

export interface SimProgress {
  variant: string;
  simulatedMs: number;
  untilMs: number;
  finishedJobs: number;
  wallMs: number;
}

export interface VariantRunOptions {
  scenario: ResolvedScenario;
  variant: ResolvedVariant;
  seed: number;
  durationMs: number;
  onProgress?: (progress: SimProgress) => void;
  /**
   * How long after its end a job attempt, with its dispatch data, is dropped
   * from memory once no pilot holds it (`Retirement`); null keeps every actor.
   */
  retireAfterMs?: number | null;
  /** Keep every actor's last transitions in the store (a breach's replay sets it); off by default. */
  keepHistory?: boolean;
}

/** History kept per actor when it is: as much as a breach's report prints. */
const KEPT_HISTORY_ENTRIES = 64;

/** Wall-clock cost of a run: reported apart from the results, which must not depend on it. */
export interface RunTiming {
  wallMs: number;
  simulatedMs: number;
  jobsStarted: number;
  jobsEnded: number;
  commits: number;
  committedRecords: number;
  /** Times the harness waited for the runtime to go quiet (one per distinct virtual instant with work). */
  instants: number;
  /** Actors dropped from memory once over: jobs, their dispatch datasets and subscriptions. */
  retiredActors: number;
}

export interface VariantResult {
  summary: VariantSummary;
  sampler: MetricsSampler;
  timing: RunTiming;
}

export async function runVariant(options: VariantRunOptions): Promise<VariantResult> {
  try {
    return await runOnce(options);
  } catch (err) {
    if (!(err instanceof InvariantViolationError) || options.keepHistory) throw err;
    throw await replayForHistory(options, err);
  }
}

/**
 * The breach of a run that kept no history, reported with the offending
 * actor's history from a replay that kept it. A replay that does not break
 * the same way at the same instant is a determinism bug: it says so.
 */
async function replayForHistory(
  options: VariantRunOptions,
  breach: InvariantViolationError,
): Promise<InvariantViolationError> {
  const { onProgress: _quiet, ...replay } = options;
  try {
    await runOnce({ ...replay, keepHistory: true });
  } catch (err) {
    if (err instanceof InvariantViolationError && sameBreach(err.violation, breach.violation)) return err;
  }
  return new InvariantViolationError(
    breach.violation,
    "  (no history: a replay of the run with history kept did not break the same way at the same instant)\n",
  );
}

function sameBreach(a: Violation, b: Violation): boolean {
  return (
    a.invariant === b.invariant &&
    a.atMs === b.atMs &&
    a.detail === b.detail &&
    a.actor?.kind === b.actor?.kind &&
    a.actor?.id === b.actor?.id
  );
}

async function runOnce(options: VariantRunOptions): Promise<VariantResult> {
  const { scenario, variant, seed, durationMs } = options;
  const strategy = variant.strategy;
  const clock = new VirtualClock(SIM_EPOCH_MS, scenario.timeResolution);
  const random = new SimRandom(seed);
  const topology = buildTopology(scenario, strategy);
  const ledger = new StorageLedger(new Map(topology.sites.map((s) => [s.name, s.config.storage])));
  let transfers: SimTransfers | null = null;
  const store = new MemoryStore();
  const grid = new Grid({
    store,
    index: new MemoryQueueIndex(),
    storageRoot: "",
    config: {
      sites: [],
      brokerage: strategy.brokerage,
      maxActiveJobsPerUser: strategy.maxActiveJobsPerUser,
      // Every job's state holds its decision: on a grid of hundreds of sites all candidates would dominate it.
      maxRecordedCandidates: RECORDED_CANDIDATES,
      siteStatsTtlMs: scenario.brokerageStatsRefresh,
    },
    runtime: {
      shardCount: scenario.shards,
      nodeId: "sim",
      clock,
      // One node owns every shard: leases and sweeps are safety nets here, so they run rarely.
      leaseMs: 3_600_000,
      sweepEveryMs: 60_000,
      historyCap: options.keepHistory ? KEPT_HISTORY_ENTRIES : 0,
      // Admission control measures this process in real time; on a virtual clock every job is admitted at once.
      intake: false,
      idleEvictMs: 3 * 3_600_000,
      maxResidentActorsPerShard: 1_000_000,
    },
    log: silentLogger,
    mover: (events) => {
      transfers = new SimTransfers(
        {
          clock,
          topology,
          streamsPerLink: scenario.network.streamsPerLink,
          random: random.stream("transfers"),
          ledger,
        },
        events,
      );
      return transfers;
    },
  });
  const dispatcher = new Dispatcher(grid, new TokenRegistry(), {
    publicUrl: "http://sim.invalid",
    shortAnalysisWalltimeSec: Math.floor(strategy.multitask.shortAnalysisWalltime / 1000),
    idlePollMs: 60_000,
    log: silentLogger,
  });
  const tracker = new JobTracker();
  grid.runtime.onTransitions(tracker.observe);
  tracker.onEnded((record) => ledger.releaseDispatch(record.jobId));
  const monitor = new InvariantMonitor(
    tracker,
    () => clock.nowMs(),
    scenario.watchdogs.heartbeatTimeout + scenario.watchdogs.sentTimeout + 60_000,
  );
  const retireAfterMs = options.retireAfterMs === undefined ? RETIRE_AFTER_MS : options.retireAfterMs;
  const retirement =
    retireAfterMs === null
      ? null
      : new Retirement(grid.runtime, store, scenario.shards, (jobId) => monitor.holds(jobId), retireAfterMs);
  if (retirement) grid.runtime.onTransitions(retirement.observe);
  let failure: unknown = null;
  const onError = (err: unknown) => {
    failure ??= err;
  };
  const payloads = new PayloadModel(seed);
  const env: PilotEnvironment = {
    clock,
    handlers: dispatcher,
    payloads,
    monitor,
    ledger,
    refusals: new Map(),
    onError,
  };
  const meters = new Map(topology.sites.map((s) => [s.name, new SlotMeter(s.name, s.slots, SIM_EPOCH_MS)]));
  const partitionsBySite = new Map<string, BatchPartition[]>();
  for (const site of topology.sites) {
    partitionsBySite.set(
      site.name,
      site.partitions.map(
        (partition, i) =>
          new BatchPartition(
            partition,
            site,
            meters.get(site.name)!,
            env,
            strategy,
            random.stream(`pilots:${site.name}:${i}`),
          ),
      ),
    );
  }
  const generator = new WorkloadGenerator({
    scenario,
    grid,
    clock,
    random,
    tracker,
    topology,
    payloads,
    ledger,
    horizonMs: SIM_EPOCH_MS + durationMs,
    occupiedSlots: () => {
      let n = 0;
      for (const meter of meters.values()) n += meter.occupied.level;
      return n;
    },
    onError,
  });
  const pilotsAt = countPilots(dispatcher);
  const sampler = new MetricsSampler(SIM_EPOCH_MS, tracker, topology, meters, () => transfers!, pilotsAt);

  await grid.start();
  for (const queue of topology.queues)
    await ensureSite(
      grid.ctx,
      siteActorInput(queue, topology.physicalOf.get(queue.name)!, scenario.siteThresholds, clock.nowMs()),
    );
  for (const partitions of partitionsBySite.values()) for (const p of partitions) p.start();
  generator.start();
  scheduleEvents(scenario, SIM_EPOCH_MS, clock, topology, partitionsBySite, grid, () => transfers!, onError);
  const untilMs = SIM_EPOCH_MS + durationMs;
  // A sample is taken once the instant it falls on has settled, so submissions of that instant are counted.
  let sampleDue = false;
  const sampleEvery = (atMs: number) => {
    clock.at(atMs, () => {
      sampleDue = true;
      if (atMs < untilMs) sampleEvery(Math.min(untilMs, atMs + scenario.sampleEvery));
    });
  };
  sampleEvery(SIM_EPOCH_MS);

  const wallStart = performance.now();
  let instants = 0;
  let lastProgressWall = wallStart;
  const runtime = grid.runtime;
  for (;;) {
    do await new Promise<void>((resolve) => setImmediate(resolve));
    while (!runtime.isQuiescent());
    instants++;
    monitor.afterDrain();
    retirement?.sweep(clock.nowMs());
    if (sampleDue) {
      sampleDue = false;
      sampler.sample(clock.nowMs());
      monitor.checkConservation(generator.submittedJobs);
      monitor.checkDeadPilots();
    }
    if (monitor.violation || failure) break;
    const next = clock.nextDueMs();
    if (next === null || next > untilMs) break;
    clock.advanceTo(next);
    clock.runDue();
    if (options.onProgress && (instants & 255) === 0) {
      const wallNow = performance.now();
      if (wallNow - lastProgressWall > 200) {
        lastProgressWall = wallNow;
        options.onProgress(progressOf(variant.name, clock, untilMs, tracker, wallNow - wallStart));
      }
    }
  }
  const wallMs = performance.now() - wallStart;
  if (!monitor.violation && !failure) await crossCheckTasks(grid, tracker, monitor);
  const violation = monitor.violation as Violation | null;
  if (violation) {
    const history = options.keepHistory ? await historyOf(runtime, violation.actor, SIM_EPOCH_MS) : "";
    await shutdown(grid, dispatcher);
    throw new InvariantViolationError({ ...violation, atMs: violation.atMs - SIM_EPOCH_MS }, history);
  }
  if (failure) {
    await shutdown(grid, dispatcher);
    throw failure;
  }
  options.onProgress?.(progressOf(variant.name, clock, untilMs, tracker, wallMs));
  const stats = runtime.stats();
  const summary = summarizeVariant({
    scenario,
    variant,
    durationMs,
    tracker,
    topology,
    meters,
    ledger,
    transfers: transfers!,
    generator,
    refusals: env.refusals,
    invariantChecks: monitor.checks,
    nowMs: untilMs,
    sampler,
  });
  await shutdown(grid, dispatcher);
  const jobsEnded = [...tracker.attemptOutcomes.values()].reduce((n, c) => n + c.production + c.analysis, 0);
  return {
    summary,
    sampler,
    timing: {
      wallMs,
      simulatedMs: durationMs,
      jobsStarted: tracker.waitsMs.production.length + tracker.waitsMs.analysis.length,
      jobsEnded,
      commits: stats.commits,
      committedRecords: stats.committedRecords,
      instants,
      retiredActors: retirement?.retired ?? 0,
    },
  };
}

function progressOf(
  variant: string,
  clock: VirtualClock,
  untilMs: number,
  tracker: JobTracker,
  wallMs: number,
): SimProgress {
  const finished = tracker.attemptOutcomes.get("finished");
  return {
    variant,
    simulatedMs: clock.nowMs() - SIM_EPOCH_MS,
    untilMs: untilMs - SIM_EPOCH_MS,
    finishedJobs: finished ? finished.production + finished.analysis : 0,
    wallMs,
  };
}

async function shutdown(grid: Grid, dispatcher: Dispatcher): Promise<void> {
  dispatcher.close();
  await grid.stop();
}

/** Pilots registered with the dispatcher per queue, for the time series. */
function countPilots(dispatcher: Dispatcher): (queue: string) => number {
  return (queue) => dispatcher.connectedAt(queue);
}
