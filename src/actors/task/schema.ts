/** The task's states, events, input and context, as zod schemas and types. */
import { z } from "zod";
import { type SandboxRef, sandboxRefSchema } from "../../sandbox/sandbox-ref.js";
import {
  type JobInput,
  jobInputFileSchema,
  type payloadSandboxSchema,
  retryPolicySchema,
  watchdogsSchema,
  workSpecShape,
} from "../job/schema.js";
import {
  type AsReceived,
  atMsSchema,
  type ErrorClass,
  errorClassSchema,
  type JobOutcome,
  jobOutcomeSchema,
  type jobTypeSchema,
  nameSchema,
} from "../shared/schemas.js";

export const TASK_STATES = [
  "defined",
  "running",
  "aborting",
  "done",
  "finished",
  "failed",
  "aborted",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** One logical job as the submit service split it: its share of the input files. */
export const taskJobSpecSchema = z.object({ inputs: z.array(jobInputFileSchema) });

export const taskInputSchema = z.object({
  ...workSpecShape,
  retry: retryPolicySchema.optional(),
  watchdogs: watchdogsSchema.partial().optional(),
  jobs: z.array(taskJobSpecSchema).min(1),
  atMs: atMsSchema,
});
export type TaskInput = z.input<typeof taskInputSchema>;

const jobReport = {
  jobId: nameSchema,
  index: z.number().int().nonnegative(),
  attempt: z.number().int().positive(),
  atMs: atMsSchema,
};

export const taskEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: taskInputSchema }),
  z.object({ type: z.literal("job.started"), ...jobReport, site: nameSchema }),
  z.object({
    type: z.literal("job.retried"),
    ...jobReport,
    nextJobId: nameSchema,
    errorClass: errorClassSchema,
    site: nameSchema.nullable(),
  }),
  z.object({
    type: z.literal("job.ended"),
    ...jobReport,
    outcome: jobOutcomeSchema,
    errorClass: errorClassSchema.nullable(),
    site: nameSchema.nullable(),
  }),
  z.object({ type: z.literal("kill"), by: z.string().min(1), reason: z.string(), atMs: atMsSchema }),
  /** A run job placed at `site` needs the site's build. */
  z.object({ type: z.literal("build.wanted"), site: nameSchema, jobId: nameSchema, atMs: atMsSchema }),
  /** A build job was retried: `nextJobId` is the site's build now. */
  z.object({ type: z.literal("build.retried"), site: nameSchema, nextJobId: nameSchema, atMs: atMsSchema }),
  /** A build job ended: with the sandbox it made, or without one and why. */
  z.object({
    type: z.literal("build.ended"),
    site: nameSchema,
    jobId: nameSchema,
    sandbox: sandboxRefSchema.optional(),
    reason: z.string(),
    atMs: atMsSchema,
  }),
]);
export type TaskEvent = AsReceived<z.infer<typeof taskEventSchema>, TaskInput>;

export interface SiteBuild {
  state: "building" | "built" | "failed";
  jobId: string;
  sandbox: z.infer<typeof payloadSandboxSchema> | null;
  reason: string | null;
  waiting: string[];
}

export interface TaskContext {
  taskId: string;
  user: string;
  type: z.infer<typeof jobTypeSchema>;
  outputDataset: string;
  /** The sandbox its jobs unpack (absent: none). */
  sandbox?: SandboxRef;
  jobCount: number;
  /** Per logical job (by index): the attempt the task knows to be the latest. */
  attempts: number[];
  /** Per logical job: how it ended, or null while an attempt is live. */
  outcomes: (JobOutcome | null)[];
  counts: { live: number; retries: number } & Record<JobOutcome, number>;
  failuresByClass: Partial<Record<ErrorClass, number>>;
  killedBy: { by: string; reason: string } | null;
  /**
   * A task with a build step: what its build jobs are made from (the shared
   * settings of its jobs, the build command as the payload), and per site the
   * build: its current job, then the sandbox it made or why it failed, and
   * the run jobs waiting for it.
   */
  build?: {
    template: JobInput;
    sites: Record<string, SiteBuild>;
  };
  timestamps: Partial<Record<TaskState, number>>;
  lastAtMs: number | null;
}
