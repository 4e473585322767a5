/**
 * Follows every job actor through the runtime's committed transitions: the
 * live state of each attempt, queue depths and running jobs per site, wait
 * times, outcomes, and who is bound to which pilot thread. It reads what
 * the actors committed; it never asks them anything.
 */
import { JOB_STATES, type JobContext, type JobState } from "../actors/job/schema.js";
import { jobStateOf } from "../actors/job/state.js";
import type { ErrorClass, JobOutcome } from "../actors/shared/schemas.js";
import type { JobType } from "../brokerage/types.js";
import type { CommittedTransition } from "../runtime/shard-host.js";

/** States in which a job is bound to a pilot thread. */
export const ON_PILOT_STATES: ReadonlySet<JobState> = new Set(["sent", "starting", "running"]);
const FINAL_STATES: ReadonlySet<JobState> = new Set(["finished", "failed", "cancelled", "closed"]);
/** Waiting for a pilot or for data: what a queue depth counts. */
export const QUEUED_STATES: readonly JobState[] = JOB_STATES.slice(0, JOB_STATES.indexOf("sent"));

export interface AttemptRecord {
  jobId: string;
  logicalId: string;
  type: JobType;
  state: JobState;
  site: string | null;
  /** `pilotId/thread` while the job is on a pilot. */
  thread: string | null;
  pilotId: string | null;
}

interface LogicalRecord {
  type: JobType;
  submittedAtMs: number;
  startedAtMs: number | null;
  /** The attempt number that is live, or 0. */
  liveAttempt: number;
  outcome: JobOutcome | null;
}

export interface TrackedTask {
  type: JobType;
  submittedAtMs: number;
}

export type CountsByType = Record<JobType, number>;
const zero = (): CountsByType => ({ production: 0, analysis: 0 });

/** Problems the tracker sees in the job actors' own transitions. */
export interface TrackerViolation {
  rule: string;
  jobId: string;
  detail: string;
}

export class JobTracker {
  readonly tasks = new Map<string, TrackedTask>();
  private readonly attempts = new Map<string, AttemptRecord>();
  private readonly logical = new Map<string, LogicalRecord>();
  /** Pilot thread -> the job bound to it, per the job actors. */
  private readonly threadHolder = new Map<string, string>();
  /** Pilot -> jobs bound to it, per the job actors. */
  private readonly jobsByPilot = new Map<string, Set<string>>();
  /** Live attempts per state and type. */
  readonly byState = new Map<JobState, CountsByType>();
  /** Per site: running (payload reported running) and activated (in the site's queue) per type. */
  readonly runningBySite = new Map<string, CountsByType>();
  readonly activatedBySite = new Map<string, CountsByType>();
  readonly attemptsCreated = zero();
  readonly attemptOutcomes = new Map<JobOutcome, CountsByType>();
  readonly failuresByClass = new Map<ErrorClass, CountsByType>();
  /** Attempts that finished, per site (queue). */
  readonly finishedBySite = new Map<string, CountsByType>();
  /** Logical jobs by how they ended (a failed attempt with a retry does not end its logical job). */
  readonly logicalOutcomes = new Map<JobOutcome, CountsByType>();
  readonly logicalLive = zero();
  /** Submission to first start of each logical job, in ms, per type. */
  readonly waitsMs: Record<JobType, number[]> = { production: [], analysis: [] };
  /** Run times of finished attempts (running to the pilot's end report), per type. */
  readonly runMs: Record<JobType, number[]> = { production: [], analysis: [] };
  /** Jobs that entered an on-pilot state since the last look, for the post-drain checks. */
  readonly enteredOnPilot: string[] = [];
  readonly violations: TrackerViolation[] = [];
  private readonly endedListeners: ((record: AttemptRecord, outcome: JobOutcome) => void)[] = [];

  registerTask(taskId: string, task: TrackedTask): void {
    this.tasks.set(taskId, task);
  }

  onEnded(listener: (record: AttemptRecord, outcome: JobOutcome) => void): void {
    this.endedListeners.push(listener);
  }

  attempt(jobId: string): AttemptRecord | undefined {
    return this.attempts.get(jobId);
  }

  jobsOnPilot(pilotId: string): ReadonlySet<string> {
    return this.jobsByPilot.get(pilotId) ?? new Set();
  }

  readonly observe = (transitions: CommittedTransition[]): void => {
    for (const transition of transitions) {
      if (!transition.actor.startsWith("job/") || transition.entry.refused || !transition.state) continue;
      this.apply(jobStateOf(transition.state), transition.state.context as JobContext, transition.entry.at);
    }
  };

  private apply(state: JobState, context: JobContext, atMs: number): void {
    const record = this.attempts.get(context.jobId) ?? this.created(context);
    if (!record) return;
    const previous = record.state;
    if (previous === state && record.site === context.site) return;
    this.count(this.byState, previous, record.type, -1);
    this.countSite(record, -1);
    record.state = state;
    record.site = context.site;
    if (!FINAL_STATES.has(state)) {
      this.count(this.byState, state, record.type, 1);
      this.countSite(record, 1);
    }
    if (ON_PILOT_STATES.has(state) && !ON_PILOT_STATES.has(previous)) this.bindThread(record, context);
    if (!ON_PILOT_STATES.has(state) && ON_PILOT_STATES.has(previous)) this.unbindThread(record);
    if (state === "running" && previous !== "running") this.started(record, atMs);
    if (FINAL_STATES.has(state)) this.attemptEnded(record, state as JobOutcome, context, atMs);
  }

  private created(context: JobContext): AttemptRecord | null {
    const logicalId = `${context.taskId}-${context.index}`;
    const task = this.tasks.get(context.taskId);
    if (!task) {
      this.violations.push({
        rule: "conservation",
        jobId: context.jobId,
        detail: "job of a task never submitted",
      });
      return null;
    }
    const record: AttemptRecord = {
      jobId: context.jobId,
      logicalId,
      type: context.type,
      state: "pending",
      site: null,
      thread: null,
      pilotId: null,
    };
    this.attempts.set(context.jobId, record);
    this.attemptsCreated[record.type]++;
    let logical = this.logical.get(logicalId);
    if (!logical) {
      logical = {
        type: context.type,
        submittedAtMs: task.submittedAtMs,
        startedAtMs: null,
        liveAttempt: 0,
        outcome: null,
      };
      this.logical.set(logicalId, logical);
    } else if (logical.liveAttempt !== 0) {
      this.violations.push({
        rule: "conservation",
        jobId: context.jobId,
        detail: `attempt ${context.attempt} created while attempt ${logical.liveAttempt} of the same job is live`,
      });
    } else if (logical.outcome) {
      // A retry: the earlier attempt's end was not the logical job's end after all.
      this.count(this.logicalOutcomes, logical.outcome, record.type, -1);
      logical.outcome = null;
    }
    logical.liveAttempt = context.attempt;
    this.logicalLive[record.type]++;
    // Counted in "pending" until its first real state is applied.
    this.count(this.byState, "pending", record.type, 1);
    return record;
  }

  private bindThread(record: AttemptRecord, context: JobContext): void {
    const pilot = context.pilot;
    if (!pilot) {
      this.violations.push({
        rule: "live pilot",
        jobId: record.jobId,
        detail: `${record.state} without a pilot`,
      });
      return;
    }
    const thread = `${pilot.pilotId}/${pilot.thread}`;
    const holder = this.threadHolder.get(thread);
    if (holder !== undefined && holder !== record.jobId) {
      this.violations.push({
        rule: "one job per thread",
        jobId: record.jobId,
        detail: `thread ${thread} already holds ${holder}`,
      });
    }
    this.threadHolder.set(thread, record.jobId);
    record.thread = thread;
    record.pilotId = pilot.pilotId;
    let jobs = this.jobsByPilot.get(pilot.pilotId);
    if (!jobs) {
      jobs = new Set();
      this.jobsByPilot.set(pilot.pilotId, jobs);
    }
    jobs.add(record.jobId);
    this.enteredOnPilot.push(record.jobId);
  }

  private unbindThread(record: AttemptRecord): void {
    if (record.thread && this.threadHolder.get(record.thread) === record.jobId)
      this.threadHolder.delete(record.thread);
    if (record.pilotId) {
      const jobs = this.jobsByPilot.get(record.pilotId);
      jobs?.delete(record.jobId);
      if (jobs?.size === 0) this.jobsByPilot.delete(record.pilotId);
    }
    record.thread = null;
  }

  private started(record: AttemptRecord, atMs: number): void {
    const logical = this.logical.get(record.logicalId)!;
    if (logical.startedAtMs !== null) return;
    logical.startedAtMs = atMs;
    this.waitsMs[record.type].push(atMs - logical.submittedAtMs);
  }

  private attemptEnded(record: AttemptRecord, outcome: JobOutcome, context: JobContext, atMs: number): void {
    this.count(this.attemptOutcomes, outcome, record.type, 1);
    if (outcome !== "finished" && context.error)
      this.count(this.failuresByClass, context.error.class, record.type, 1);
    if (outcome === "finished" && record.site) this.count(this.finishedBySite, record.site, record.type, 1);
    if (outcome === "finished" && context.timestamps.running !== undefined)
      this.runMs[record.type].push((context.timestamps.holding ?? atMs) - context.timestamps.running);
    const logical = this.logical.get(record.logicalId)!;
    if (logical.liveAttempt === context.attempt) {
      logical.liveAttempt = 0;
      logical.outcome = outcome;
      this.logicalLive[record.type]--;
      this.count(this.logicalOutcomes, outcome, record.type, 1);
    }
    for (const listener of this.endedListeners) listener(record, outcome);
    // The attempt is over: keep only what the checks and counts above needed.
    this.attempts.delete(record.jobId);
  }

  private countSite(record: AttemptRecord, delta: number): void {
    if (!record.site) return;
    if (record.state === "running") this.count(this.runningBySite, record.site, record.type, delta);
    if (record.state === "activated") this.count(this.activatedBySite, record.site, record.type, delta);
  }

  private count<K>(map: Map<K, CountsByType>, key: K, type: JobType, delta: number): void {
    let counts = map.get(key);
    if (!counts) {
      counts = zero();
      map.set(key, counts);
    }
    counts[type] += delta;
  }

  /** Live attempts in the given states, both types together. */
  liveIn(states: readonly JobState[], type?: JobType): number {
    let n = 0;
    for (const state of states) {
      const counts = this.byState.get(state);
      if (counts) n += type ? counts[type] : counts.production + counts.analysis;
    }
    return n;
  }

  /** Logical jobs that ended with `outcome`, both types or one. */
  endedCount(outcome: JobOutcome, type?: JobType): number {
    const counts = this.logicalOutcomes.get(outcome);
    return counts ? (type ? counts[type] : counts.production + counts.analysis) : 0;
  }
}
