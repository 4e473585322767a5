// The factory actor's events and context: the last state report of one `panda factory`, per queue.
import { z } from "zod";
import { agentNameSchema } from "../pilot-job/schema.js";
import { atMsSchema, nameSchema } from "../shared/schemas.js";

const countSchema = z.number().int().nonnegative();

export const queueThrottleSchema = z.object({
  throttled: z.boolean(),
  /** Why, in words an operator acts on: "3 pilots in a row failed within 60 s (last: exit 4)". */
  reason: z.string().max(1000).nullable(),
  sinceMs: z.number().nullable(),
  /** While throttled, one submission per this long at most. */
  backoffSec: z.number().nonnegative(),
  consecutiveFastFailures: countSchema,
});
export type QueueThrottle = z.infer<typeof queueThrottleSchema>;

export const queueReportSchema = z.object({
  name: agentNameSchema,
  site: nameSchema,
  batchSystem: z.string().min(1).max(32),
  partition: z.string().max(200).nullable(),
  maxQueued: countSchema,
  maxRunning: countSchema,
  pilotsPerJob: z.number().int().positive(),
  /** Live batch jobs by state. */
  jobs: z.object({ submitting: countSchema, queued: countSchema, running: countSchema }),
  /** What the server said the site needs at the last poll, or null when it could not be read. */
  demand: z.object({ activated: countSchema, assigned: countSchema, idleThreads: countSchema }).nullable(),
  submissionsPerMin: z.number().nonnegative(),
  throttle: queueThrottleSchema,
  /** The last failure talking to the batch system or the server, or null when the last poll went through. */
  lastError: z.string().max(2000).nullable(),
});
export type QueueReport = z.infer<typeof queueReportSchema>;

/** One queue's report, with the process that made it: each queue reports with its own site's token. */
export const factoryReportSchema = z.object({
  host: z.string().max(255),
  pid: z.number().int().positive(),
  startedAtMs: z.number(),
  pollSeconds: z.number().positive(),
  queue: queueReportSchema,
});
export type FactoryReport = z.infer<typeof factoryReportSchema>;

export const factoryEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: z.object({ name: agentNameSchema, atMs: atMsSchema }) }),
  z.object({ type: z.literal("report"), report: factoryReportSchema, atMs: atMsSchema }),
]);
export type FactoryEvent = z.infer<typeof factoryEventSchema>;
export type FactoryInput = Extract<FactoryEvent, { type: "create" }>["input"];

export interface FactoryContext {
  name: string;
  /** The process that reported last. */
  process: Omit<FactoryReport, "queue"> | null;
  queues: Record<string, QueueReport & { reportedAtMs: number | null }>;
  reportedAtMs: number | null;
}
