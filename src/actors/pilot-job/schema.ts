// The pilot-job actor's input, events and context: one batch job a factory submitted, from submission to its end.
import { z } from "zod";
import { atMsSchema, nameSchema } from "../shared/schemas.js";

export const PILOT_JOB_STATES = [
  "submitting",
  "queued",
  "running",
  "done",
  "failed",
  "cancelled",
  "lost",
] as const;
export type PilotJobState = (typeof PILOT_JOB_STATES)[number];
export const FINAL_PILOT_JOB_STATES: ReadonlySet<string> = new Set(["done", "failed", "cancelled", "lost"]);

/** What a batch system can be seen to do with a job; `lost` is the factory's verdict, not an observation. */
export const observedStateSchema = z.enum(["queued", "running", "done", "failed", "cancelled"]);

/** Factory and queue names: they become parts of pilot-job ids and file names. */
export const agentNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "letters, digits, '.', '_' and '-', at most 64");

export const pilotJobInputSchema = z.object({
  id: nameSchema,
  factory: agentNameSchema,
  queue: agentNameSchema,
  site: nameSchema,
  batchSystem: z.string().min(1).max(32),
  /** Pilots the batch job runs side by side. */
  pilots: z.number().int().positive(),
  atMs: atMsSchema,
});
export type PilotJobInput = z.input<typeof pilotJobInputSchema>;

const exitCodeSchema = z.number().int().nullable();
const reasonSchema = z.string().max(1000).nullable();

/** What a factory reports about a job after creating its record. */
export const pilotJobUpdateSchema = z.discriminatedUnion("type", [
  /** The batch system took the job and named it. */
  z.object({ type: z.literal("submitted"), batchId: z.string().min(1).max(200), atMs: atMsSchema }),
  /** What the batch system says now; a job seen for the first time (adopted) may carry its batch id. */
  z.object({
    type: z.literal("observed"),
    state: observedStateSchema,
    batchId: z.string().min(1).max(200).optional(),
    exitCode: exitCodeSchema.default(null),
    reason: reasonSchema.default(null),
    atMs: atMsSchema,
  }),
  /** The factory asked the batch system to cancel it (demand dropped, or an operator stopped the queue). */
  z.object({ type: z.literal("cancel.requested"), reason: z.string().max(1000), atMs: atMsSchema }),
  /** Never reached the batch system, or the batch system forgot it before its end was seen. */
  z.object({ type: z.literal("lost"), reason: z.string().max(1000), atMs: atMsSchema }),
]);
export type PilotJobUpdate = z.infer<typeof pilotJobUpdateSchema>;

export const pilotJobEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: pilotJobInputSchema }),
  ...pilotJobUpdateSchema.options,
]);
export type PilotJobEvent = z.infer<typeof pilotJobEventSchema>;

export interface PilotJobContext {
  id: string;
  factory: string;
  queue: string;
  site: string;
  batchSystem: string;
  pilots: number;
  batchId: string | null;
  exitCode: number | null;
  /** The batch system's last word (a pending reason, a failure), or why the job was lost. */
  reason: string | null;
  cancelReason: string | null;
  timestamps: Partial<Record<PilotJobState, number>>;
  lastAtMs: number | null;
}
