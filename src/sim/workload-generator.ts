/**
 * Submits the scenario's work through the grid's own submit path, at the
 * virtual times the scenario says: production tasks under JEDI-like flow
 * control (released as the grid's queues drain), analysis tasks by a
 * Poisson background and bursts. Task ids are explicit and numbered in
 * submission order, so every run names its jobs the same way.
 */
import { refs } from "../actors/shared/names.js";
import type { JobType } from "../brokerage/types.js";
import type { Grid } from "../workload/grid.js";
import type { TaskSubmission } from "../workload/submit.js";
import { type Distribution, sample } from "./distribution.js";
import { type JobTracker, QUEUED_STATES } from "./job-tracker.js";
import { type PayloadModel, SIM_PAYLOAD_COMMAND, simChecksum } from "./payload-model.js";
import type { RandomStream, SimRandom } from "./random.js";
import type { AnalysisWork, ProductionKind, ResolvedScenario } from "./scenario.js";
import type { StorageLedger } from "./storage-ledger.js";
import { RELEASE_OF, type Topology } from "./topology.js";
import type { VirtualClock } from "./virtual-clock.js";

export interface GeneratorOptions {
  scenario: ResolvedScenario;
  grid: Grid;
  clock: VirtualClock;
  random: SimRandom;
  tracker: JobTracker;
  topology: Topology;
  payloads: PayloadModel;
  ledger: StorageLedger;
  /** Nothing is scheduled past this time. */
  horizonMs: number;
  /** Batch slots held by pilots right now, across the grid: production is released in proportion. */
  occupiedSlots(): number;
  onError(err: unknown): void;
}

interface KindState {
  kind: ProductionKind;
  released: number;
}

/** Shared by every job of one kind of work. */
interface WorkShape {
  duration: Distribution;
  walltime: number;
  memoryMb: number;
  priority: number;
  inputs?: ProductionKind["inputs"];
  outputs?: ProductionKind["outputs"];
}

export class WorkloadGenerator {
  private readonly production: KindState[];
  private readonly startMs: number;
  private taskSeq = 0;
  submittedTasks = 0;
  submittedJobs = 0;
  readonly submittedByType: Record<JobType, number> = { production: 0, analysis: 0 };
  private readonly productionRandom: RandomStream;
  private readonly analysisRandom: RandomStream;
  private readonly dataRandom: RandomStream;
  private userWeights: number[] = [];

  constructor(private readonly options: GeneratorOptions) {
    const { scenario, random, payloads } = options;
    this.startMs = options.clock.nowMs();
    this.production = (scenario.production?.kinds ?? []).map((kind) => ({ kind, released: 0 }));
    this.productionRandom = random.stream("workload:production");
    this.analysisRandom = random.stream("workload:analysis");
    this.dataRandom = random.stream("workload:data");
    for (const { kind } of this.production) {
      payloads.add({
        name: kind.name,
        type: "production",
        duration: kind.duration,
        walltimeMs: kind.walltime,
        outputSize: kind.outputs?.fileSize ?? null,
      });
    }
    if (scenario.analysis) {
      payloads.add({
        name: "analysis",
        type: "analysis",
        duration: scenario.analysis.duration,
        walltimeMs: scenario.analysis.walltime,
        outputSize: scenario.analysis.outputs?.fileSize ?? null,
      });
      const skew = scenario.analysis.userSkew;
      this.userWeights = Array.from({ length: scenario.analysis.users }, (_, i) => 1 / (i + 1) ** skew);
    }
  }

  start(): void {
    const { scenario, clock } = this.options;
    if (scenario.production) this.every(scenario.production.checkEvery, () => this.releaseProduction());
    const analysis = scenario.analysis;
    if (!analysis) return;
    if (analysis.arrival) {
      const arrival = analysis.arrival;
      clock.at(this.startMs + arrival.from, () => this.nextArrival(analysis, arrival.rate, arrival.until));
    }
    for (const burst of analysis.bursts) {
      for (
        let atMs = burst.at;
        atMs < this.options.horizonMs - this.startMs;
        atMs += burst.every ?? Number.POSITIVE_INFINITY
      ) {
        clock.at(this.startMs + atMs, () => this.burst(analysis, burst));
        if (burst.every === undefined) break;
      }
    }
  }

  private every(periodMs: number, action: () => void): void {
    const { clock } = this.options;
    clock.at(clock.nowMs() + periodMs, () => {
      action();
      this.every(periodMs, action);
    });
  }

  /**
   * Releases production tasks until the waiting production work reaches its
   * target, in proportion to the slots pilots hold (as JEDI sizes its queues
   * by what sites run): a grid that is still starting up is not flooded with
   * jobs that no site could be brokered for yet.
   */
  private releaseProduction(): void {
    const production = this.options.scenario.production!;
    const target = production.keepQueuedPerSlot * this.options.occupiedSlots();
    let queued = this.options.tracker.liveIn(QUEUED_STATES, "production");
    const elapsedMs = this.options.clock.nowMs() - this.startMs;
    while (queued < target) {
      const ready = this.production.filter((k) => k.released < k.kind.tasks && k.kind.startAt <= elapsedMs);
      if (ready.length === 0) return;
      const chosen = ready[this.productionRandom.weighted(ready.map((k) => k.kind.weight))]!;
      chosen.released++;
      queued += this.submit(
        "production",
        chosen.kind.name,
        chosen.kind.user,
        chosen.kind,
        chosen.kind.jobsPerTask,
        this.productionRandom,
      );
    }
  }

  private nextArrival(analysis: AnalysisWork, ratePerHour: number, untilMs: number | undefined): void {
    const { clock } = this.options;
    if (untilMs !== undefined && clock.nowMs() - this.startMs >= untilMs) return;
    this.submitAnalysis(analysis);
    clock.at(clock.nowMs() + this.analysisRandom.exponential(3_600_000 / ratePerHour), () =>
      this.nextArrival(analysis, ratePerHour, untilMs),
    );
  }

  private burst(analysis: AnalysisWork, burst: AnalysisWork["bursts"][number]): void {
    const { clock } = this.options;
    const nowMs = clock.nowMs();
    for (let i = 0; i < burst.tasks; i++) {
      const u = this.analysisRandom.next();
      const offset =
        burst.shape === "uniform"
          ? u
          : burst.shape === "ramp"
            ? Math.sqrt(u)
            : burst.shape === "decay"
              ? -Math.log(1 - u * (1 - Math.exp(-4))) / 4
              : 0;
      clock.at(nowMs + Math.round(offset * burst.over), () => this.submitAnalysis(analysis));
    }
  }

  private submitAnalysis(analysis: AnalysisWork): void {
    const user = `user${String(this.analysisRandom.weighted(this.userWeights) + 1).padStart(3, "0")}`;
    this.submit("analysis", "analysis", user, analysis, analysis.jobsPerTask, this.analysisRandom);
  }

  /** Creates the task's input dataset if it has inputs, then submits it; returns its job count. */
  private submit(
    type: JobType,
    kindName: string,
    user: string,
    shape: WorkShape,
    jobsPerTask: Distribution,
    random: RandomStream,
  ): number {
    const { grid, clock, tracker, scenario } = this.options;
    const taskId = `${type === "production" ? kindName : "user"}.${String(++this.taskSeq).padStart(7, "0")}`;
    const jobs = Math.max(1, Math.round(sample(jobsPerTask, random)));
    const nowMs = clock.nowMs();
    tracker.registerTask(taskId, { type, submittedAtMs: nowMs });
    this.submittedTasks++;
    this.submittedJobs += jobs;
    this.submittedByType[type] += jobs;
    const watchdogs = scenario.watchdogs;
    const submission: TaskSubmission = {
      taskId,
      type,
      priority: shape.priority,
      resources: {
        cores: 1,
        memoryMb: shape.memoryMb,
        diskMb: 2000,
        walltimeSec: Math.ceil(shape.walltime / 1000),
      },
      release: RELEASE_OF[type],
      payload: { command: [SIM_PAYLOAD_COMMAND, kindName], outputs: shape.outputs ? ["{jobId}.out"] : [] },
      destination: shape.outputs?.destination ?? null,
      watchdogs: {
        heartbeatTimeoutMs: watchdogs.heartbeatTimeout,
        sentTimeoutMs: watchdogs.sentTimeout,
        assignedTimeoutMs: watchdogs.assignedTimeout,
        holdingTimeoutMs: watchdogs.holdingTimeout,
        rebrokerMs: watchdogs.rebroker,
        maxBrokerageTries: watchdogs.maxBrokerageTries,
      },
      ...(shape.inputs
        ? { input: { dataset: `${taskId}.in`, filesPerJob: shape.inputs.filesPerJob } }
        : { jobs }),
    };
    const files = shape.inputs
      ? this.inputFiles(taskId, jobs * shape.inputs.filesPerJob, shape.inputs)
      : null;
    void (async () => {
      if (files) {
        await grid.runtime.send(
          refs.dataset(`${taskId}.in`),
          { type: "create", input: { name: `${taskId}.in`, state: "closed", ...files, atMs: nowMs } },
          { eventId: `sim:dataset:${taskId}` },
        );
      }
      const result = await grid.submit(submission, user);
      if (result.jobs !== jobs)
        throw new Error(`task ${taskId} was split into ${result.jobs} jobs, ${jobs} expected`);
    })().catch((err: unknown) => this.options.onError(err));
    return jobs;
  }

  /** The task's input files, placed at one site (weighted by slots among those allowed). */
  private inputFiles(taskId: string, count: number, inputs: NonNullable<WorkShape["inputs"]>) {
    const { topology, ledger } = this.options;
    const candidates = inputs.at ? topology.sites.filter((s) => inputs.at!.includes(s.name)) : topology.sites;
    const home = candidates[this.dataRandom.weighted(candidates.map((s) => s.slots))]!;
    const files = Array.from({ length: count }, (_, i) => {
      const lfn = `${taskId}.in._${String(i + 1).padStart(6, "0")}`;
      return {
        lfn,
        sizeBytes: Math.round(sample(inputs.fileSize, this.dataRandom)),
        checksum: simChecksum(lfn),
      };
    });
    ledger.add(
      home.name,
      files.reduce((sum, f) => sum + f.sizeBytes, 0),
    );
    return { files, replicas: { [home.name]: files.map((f) => f.lfn) } };
  }
}
