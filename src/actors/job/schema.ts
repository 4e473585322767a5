/** The job's states, events, input and context, as zod schemas and types. */
import { z } from "zod";
import { sandboxRefSchema } from "../../sandbox/sandbox-ref.js";
import {
  type AsReceived,
  atMsSchema,
  durationMsSchema,
  type ErrorClass,
  errorClassSchema,
  fileToMoveSchema,
  type JobOutcome,
  jobTypeSchema,
  logicalFileSchema,
  nameSchema,
} from "../shared/schemas.js";

export const JOB_STATES = [
  "pending",
  "defined",
  "waiting",
  "assigned",
  "activated",
  "throttled",
  "sent",
  "starting",
  "running",
  "holding",
  "transferring",
  "finished",
  "failed",
  "cancelled",
  "closed",
] as const;
export const jobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof jobStateSchema>;
export type JobOutcomeState = Extract<JobState, JobOutcome>;

export const resourcesSchema = z.object({
  cores: z.number().int().positive(),
  memoryMb: z.number().int().positive(),
  diskMb: z.number().int().nonnegative(),
  walltimeSec: z.number().int().positive(),
});
export type JobResources = z.infer<typeof resourcesSchema>;

export const jobInputFileSchema = logicalFileSchema.extend({ dataset: nameSchema });
export type JobInputFile = z.infer<typeof jobInputFileSchema>;

export const outputSpecSchema = z.object({
  dataset: nameSchema,
  /** Where the outputs must end up; null or the job's own site means they stay where they were written. */
  destination: nameSchema.nullable().default(null),
});
export type OutputSpec = z.infer<typeof outputSpecSchema>;

/**
 * How long a job may wait `assigned` or `activated` at a site before it is
 * reassigned, unless the site says otherwise: longer than a long production
 * job, so a busy site's healthy queue keeps its jobs, and a day shorter than
 * PanDA's two days (which polled; we push).
 */
export const DEFAULT_REASSIGN_AFTER_MS = 24 * 3_600_000;

export const DEFAULT_MAX_ATTEMPTS = { production: 3, analysis: 10 } as const;
/** `payload` is left out: a transformation that exits non-zero usually does so again. */
export const DEFAULT_RETRY_ERROR_CLASSES: ErrorClass[] = [
  "pilot",
  "stagein",
  "stageout",
  "lostHeartbeat",
  "timeout",
  "system",
];

export const retryPolicySchema = z.object({
  /** Attempts that count against the user; defaults by job type. */
  maxAttempts: z.number().int().positive().optional(),
  retryErrorClasses: z.array(errorClassSchema).default(DEFAULT_RETRY_ERROR_CLASSES),
  backoffMs: durationMsSchema.default(0),
  excludeFailingSite: z.boolean().default(true),
  /** System errors do not count against `maxAttempts`; this caps them separately so a broken system cannot loop. */
  maxSystemRetries: z.number().int().nonnegative().default(3),
});
export type RetryPolicy = Required<z.infer<typeof retryPolicySchema>>;

export const watchdogsSchema = z.object({
  sentTimeoutMs: durationMsSchema.default(5 * 60_000),
  heartbeatTimeoutMs: durationMsSchema.default(10 * 60_000),
  assignedTimeoutMs: durationMsSchema.default(2 * 3_600_000),
  holdingTimeoutMs: durationMsSchema.default(3_600_000),
  rebrokerMs: durationMsSchema.default(60_000),
  maxBrokerageTries: z.number().int().positive().default(10),
});
export type Watchdogs = z.infer<typeof watchdogsSchema>;

/** What every job of a task shares: who runs it, what it needs, where its outputs go. */
/** A sandbox as a job carries it: which archive, and what unpacking it may make. */
export const payloadSandboxSchema = sandboxRefSchema.extend({
  maxUnpackedBytes: z.number().int().positive(),
  maxEntries: z.number().int().positive(),
});

/** What the pilot runs: argv (no shell) and extra environment. */
export const payloadSchema = z.object({
  command: z.array(z.string().min(1)).min(1),
  env: z.record(z.string(), z.string()).default({}),
  /**
   * Files the payload writes in its work directory, registered as the job's
   * outputs; `{jobId}` in a name (and in the command) is replaced per job so
   * every attempt's files have their own logical names.
   */
  outputs: z.array(z.string().min(1).max(255)).default([]),
  /**
   * The user's code, unpacked into the work directory before the command
   * runs, with the limits the pilot unpacks it within (the grid's, when the
   * task was submitted). Set only by submission, from an uploaded sandbox.
   */
  sandbox: payloadSandboxSchema.optional(),
  /**
   * A run job of a task with a build step: it runs in the sandbox its site's
   * build job made from `sandbox` with this command, and waits for it.
   */
  build: z
    .object({ command: z.array(z.string().min(1)).min(1), maxBytes: z.number().int().positive() })
    .optional(),
  /** A build job: after the command, the pilot packs the job directory as a sandbox (at most `maxBytes`) and reports it. */
  producesSandbox: z.object({ maxBytes: z.number().int().positive() }).optional(),
});
export type JobPayload = z.infer<typeof payloadSchema>;

export const workSpecShape = {
  taskId: nameSchema,
  user: z.string().min(1),
  group: z.string().min(1).nullable().default(null),
  type: jobTypeSchema,
  priority: z.number().int(),
  resources: resourcesSchema,
  release: z.string().min(1).nullable().default(null),
  outputs: outputSpecSchema,
  /** Null for work that is only simulated. */
  payload: payloadSchema.nullable().default(null),
  /** The user asked for this site: brokerage considers no other. */
  requestedSite: nameSchema.nullable().default(null),
  /** A test job (a site's functional test): the only work a site in status `test` takes. */
  test: z.boolean().default(false),
  /** The fair share the jobs draw on, chosen at submission from the grid's shares; null: `default`. */
  share: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .nullable()
    .default(null),
};

export const jobInputSchema = z.object({
  ...workSpecShape,
  index: z.number().int().nonnegative(),
  attempt: z.number().int().positive().default(1),
  inputs: z.array(jobInputFileSchema).default([]),
  retry: retryPolicySchema.prefault({}),
  excludedSites: z.array(nameSchema).default([]),
  watchdogs: watchdogsSchema.prefault({}),
  /** Earlier attempts of this logical job that failed with a system error. */
  systemFailures: z.number().int().nonnegative().default(0),
  /** Earlier attempts of this logical job that were reassigned: like system failures, not the user's. */
  reassignments: z.number().int().nonnegative().default(0),
  /** Retry backoff: the attempt waits this long in `pending` before asking brokerage. */
  startDelayMs: durationMsSchema.default(0),
  atMs: atMsSchema,
});
export type JobInput = z.input<typeof jobInputSchema>;
export type ParsedJobInput = z.output<typeof jobInputSchema>;

const pilotReport = { pilotId: nameSchema, attempt: z.number().int().positive(), atMs: atMsSchema };
const lfnsSchema = z.array(z.string().min(1)).min(1);

export const jobEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: jobInputSchema }),
  z.object({
    type: z.literal("brokered"),
    site: nameSchema.nullable(),
    filesToMove: z.array(fileToMoveSchema),
    /** Lfns of inputs that no dataset holds yet. */
    waitingFor: z.array(z.string().min(1)),
    decision: z.unknown(),
    /** The job's current priority (the user's rule, `userPriority`); absent: its own priority. */
    priority: z.number().int().optional(),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("inputs.ready"), subscription: nameSchema, atMs: atMsSchema }),
  z.object({
    type: z.literal("inputs.failed"),
    subscription: nameSchema,
    reason: z.string(),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("input.available"), dataset: nameSchema, lfns: lfnsSchema, atMs: atMsSchema }),
  z.object({ type: z.literal("input.missing"), dataset: nameSchema, lfns: lfnsSchema, atMs: atMsSchema }),
  z.object({ type: z.literal("throttle"), reason: z.string().optional(), atMs: atMsSchema }),
  z.object({ type: z.literal("release"), atMs: atMsSchema }),
  z.object({
    type: z.literal("dispatch"),
    pilotId: nameSchema,
    thread: z.enum(["primary", "secondary"]),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("pilot.starting"), ...pilotReport }),
  z.object({ type: z.literal("pilot.running"), ...pilotReport }),
  z.object({
    type: z.literal("pilot.heartbeat"),
    ...pilotReport,
    /**
     * How long after it was heard (`atMs`) the beat is delivered: a node holds
     * most beats and commits one late (src/server/heartbeat-ledger.ts). The
     * watchdog counts from when the beat was heard, not from its commit.
     */
    heldMs: z.number().int().nonnegative().optional(),
  }),
  z.object({
    type: z.literal("pilot.ended"),
    ...pilotReport,
    exitCode: z.number().int(),
    errorClass: errorClassSchema.optional(),
    errorCode: z.union([z.string(), z.number()]).optional(),
    errorMessage: z.string().optional(),
    outputs: z.array(logicalFileSchema),
    log: logicalFileSchema.nullable().optional(),
    /** A build job's product: the sandbox it uploaded. */
    sandbox: sandboxRefSchema.optional(),
  }),
  z.object({
    type: z.literal("outputs.registered"),
    requestId: z.string().min(1),
    dataset: nameSchema,
    lfns: z.array(z.string().min(1)),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("outputs.transferred"), subscription: nameSchema, atMs: atMsSchema }),
  z.object({
    type: z.literal("outputs.failed"),
    subscription: nameSchema,
    reason: z.string(),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("kill"), by: z.string().min(1), reason: z.string(), atMs: atMsSchema }),
  z.object({ type: z.literal("close"), reason: z.string(), atMs: atMsSchema }),
  /** From the task: the build at `site` made this sandbox; a run job waiting there runs in it. */
  z.object({
    type: z.literal("build.ready"),
    site: nameSchema,
    sandbox: payloadSandboxSchema,
    atMs: atMsSchema,
  }),
  /** From the task: the build at `site` failed for good. */
  z.object({ type: z.literal("build.failed"), site: nameSchema, reason: z.string(), atMs: atMsSchema }),
  /** Closes this attempt and brokers the next one (at `site` when given); nobody's failure. */
  z.object({
    type: z.literal("reassign"),
    by: z.string().min(1),
    reason: z.string(),
    site: nameSchema.nullable().optional(),
    /**
     * The grid's reassignment of a job that waited too long names the stay it
     * judged (the state and the whole second it began): a job that left it
     * meanwhile refuses the event.
     */
    waited: z
      .object({
        state: z.enum(["activated", "assigned"]),
        sinceSec: z.number().int().nonnegative(),
      })
      .optional(),
    atMs: atMsSchema,
  }),
]);
export type JobEvent = AsReceived<z.infer<typeof jobEventSchema>, JobInput>;

export interface JobError {
  class: ErrorClass;
  code: string;
  message: string;
}

export interface PilotBinding {
  pilotId: string;
  thread: "primary" | "secondary";
}

export interface JobContext {
  jobId: string;
  taskId: string;
  index: number;
  attempt: number;
  user: string;
  group: string | null;
  type: ParsedJobInput["type"];
  priority: number;
  /** Its place in its share's queue: `priority` less the user's rule, set when brokered; null: `priority`. */
  currentPriority: number | null;
  /** The fair share it draws on; null (a job made before shares): `default`. */
  share: string | null;
  resources: JobResources;
  release: string | null;
  inputs: JobInputFile[];
  outputs: OutputSpec;
  payload: JobPayload | null;
  requestedSite: string | null;
  test: boolean;
  site: string | null;
  pilot: PilotBinding | null;
  /**
   * How often brokerage answered. Its decision (every candidate site with its
   * score or why it was excluded) is kept in the `brokered` history entry only:
   * in a grid of hundreds of sites it is tens of kilobytes, which the snapshot
   * would re-encode on every later transition.
   */
  brokerage: { tries: number };
  /** Lfns brokerage found not yet produced; the job watches their datasets. */
  waitingFor: string[];
  dispatch: { dataset: string; subscription: string } | null;
  /** A run job of a build task: its site's built sandbox, once the task said it is there. */
  builtSandbox?: z.infer<typeof payloadSandboxSchema>;
  /** A build job: the sandbox its pilot made and uploaded. */
  producedSandbox?: z.infer<typeof sandboxRefSchema>;
  /** What the pilot reported it wrote (outputs and log), registered while holding. */
  producedFiles: z.infer<typeof logicalFileSchema>[];
  exitCode: number | null;
  error: JobError | null;
  timestamps: Partial<Record<JobState, number>>;
  lastAtMs: number | null;
  retry: RetryPolicy;
  excludedSites: string[];
  watchdogs: Watchdogs;
  systemFailures: number;
  reassignments: number;
  /** Set when the attempt is being reassigned: who asked, why, and where the next attempt must go. */
  reassignment: Reassignment | null;
  startDelayMs: number;
}

export interface Reassignment {
  by: string;
  reason: string;
  site: string | null;
}
