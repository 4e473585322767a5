// The one interface every batch-system plugin implements: submit a pilot job, say what became of the jobs, cancel.

/** One batch job to run: a command (one pilot, or a few) with the resources to ask for. */
export interface PilotJobSpec {
  /** The factory's id for the job (its pilot-job record): names the job in the batch system. */
  pilotJobId: string;
  /** The program and its arguments; no shell between. */
  argv: string[];
  /** Extra environment; secrets (the pilot token) go here, never in argv, so `ps` and `squeue` do not show them. */
  env: Record<string, string>;
  /** Copies of the command run side by side in the job; the job's exit code is the first non-zero one. */
  copies: number;
  /** The Slurm partition, HTCondor or PBS queue; null for a batch system without one. */
  partition: string | null;
  walltimeSec: number;
  cores: number;
  memoryMb: number;
  /** Where the job runs; made if missing. */
  workdir: string;
  /** Where the job's stdout and stderr go. */
  logPath: string;
}

export const BATCH_JOB_STATES = ["queued", "running", "done", "failed", "cancelled"] as const;
export type BatchJobState = (typeof BATCH_JOB_STATES)[number];
export const ENDED_BATCH_STATES: ReadonlySet<BatchJobState> = new Set(["done", "failed", "cancelled"]);

/** What the batch system says about one of the factory's jobs. */
export interface BatchJobStatus {
  batchId: string;
  pilotJobId: string;
  state: BatchJobState;
  /** The job's exit code once it ended, when the batch system knows it. */
  exitCode: number | null;
  startedAtMs: number | null;
  endedAtMs: number | null;
  /** The batch system's own word on it (a pending reason, a failure), or null. */
  reason: string | null;
}

/**
 * A batch system the factory submits pilot jobs to. `status` answers every
 * job of this plugin's queue that the batch system still knows, including
 * ones submitted by an earlier run of the factory (that is how a restarted
 * factory adopts its jobs) and ended ones it still remembers (Slurm: for
 * MinJobAge). A job missing from the answer has been forgotten.
 */
export interface BatchSystem {
  /** `slurm`, `local`: shown in records and surfaces. */
  readonly kind: string;
  /** Answers the batch system's id of the new job. */
  submit(spec: PilotJobSpec): Promise<string>;
  status(): Promise<BatchJobStatus[]>;
  /** Asks the batch system to end the jobs (queued ones never start; running pilots get SIGTERM, so they drain). */
  cancel(batchIds: readonly string[]): Promise<void>;
}

/** A batch-system command that failed; the message carries what it printed. */
export class BatchSystemError extends Error {
  override readonly name = "BatchSystemError";
}
