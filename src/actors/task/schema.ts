/** The task's states, events, input and context, as zod schemas and types. */
import { z } from "zod";
import type { SandboxRef } from "../../sandbox/sandbox-ref.js";
import { jobInputFileSchema, retryPolicySchema, watchdogsSchema, workSpecShape } from "../job/schema.js";
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
]);
export type TaskEvent = AsReceived<z.infer<typeof taskEventSchema>, TaskInput>;

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
  timestamps: Partial<Record<TaskState, number>>;
  lastAtMs: number | null;
}
