/** Every query and body the API takes, validated before anything is read or changed. */
import { z } from "zod";
import { JOB_STATES } from "../actors/job/schema.js";
import { nameSchema } from "../actors/shared/schemas.js";
import { siteStatusSchema } from "../actors/site/schema.js";
import { SUBSCRIPTION_STATES, subscriptionPurposeSchema } from "../actors/subscription/schema.js";
import { TASK_STATES } from "../actors/task/schema.js";
import { incidentLevelSchema, incidentSourceSchema } from "../workload/incident-log.js";
import { roleSchema } from "./tokens.js";

const epochMs = z.coerce.number().int().nonnegative();
const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const offset = z.coerce.number().int().min(0).default(0);

export const tasksQuerySchema = z.object({
  user: z.string().min(1).optional(),
  state: z.enum(TASK_STATES).optional(),
  offset,
  limit: limit(10_000, 500),
});

export const jobsQuerySchema = z.object({
  task: z.string().min(1).optional(),
  state: z.enum(JOB_STATES).optional(),
  site: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  /** The job entered its current state at or after this time (epoch ms). */
  since: epochMs.optional(),
  /** ... and at or before this time. */
  until: epochMs.optional(),
  offset,
  limit: limit(10_000, 500),
});
export type JobsQuery = z.output<typeof jobsQuerySchema>;

export const actorQuerySchema = z.object({
  history: z.coerce.number().int().min(0).max(10_000).default(1000),
  at: epochMs.optional(),
});

export const killBodySchema = z.object({ reason: z.string().min(1).max(500).default("killed by request") });

export const siteStatusBodySchema = z.object({
  status: siteStatusSchema,
  reason: z.string().min(1, "say why (it is recorded with the status)").max(500),
});

/** Strict: a misspelt field (`sites`) must be named, not ignored into a reassignment anywhere. */
export const reassignBodySchema = z.strictObject({
  /** Where the next attempt must run; brokerage chooses when absent. */
  site: nameSchema.optional(),
  reason: z.string().min(1).max(500).default("reassigned by an operator"),
});

export const drainBodySchema = z.strictObject({
  reason: z.string().min(1).max(500).default("drained by an operator"),
});

export const pilotsQuerySchema = z.object({
  site: z.string().min(1).optional(),
  /** A site whose pilots ask for work less often than this is flagged (`below`), as the seed's monitor shows it red. */
  minRequestsPerMin: z.coerce.number().nonnegative().max(1_000_000).default(1),
});

/** The windows the job summary and the errors page count over: the sites keep a day of hours. */
export const hoursSchema = z.coerce
  .number()
  .int()
  .refine((h) => h === 1 || h === 12 || h === 24, "1, 12 or 24");

export const jobSummaryQuerySchema = z.object({ hours: hoursSchema.default(12) });

export const errorsQuerySchema = z.object({ site: z.string().min(1).optional() });

export const putFileQuerySchema = z.object({ site: z.string().min(1), lfn: z.string().min(1) });

export const datasetsQuerySchema = z.object({
  /** Shell-style wildcards: `*` any run of characters, `?` one character. */
  pattern: z.string().min(1).max(300).default("*"),
  limit: limit(10_000, 500),
});

export const subscribeBodySchema = z.object({ site: nameSchema });

export const subscriptionsQuerySchema = z.object({
  dataset: z.string().min(1).optional(),
  site: z.string().min(1).optional(),
  state: z.enum(SUBSCRIPTION_STATES).optional(),
  /** `dispatch`: the dispatch blocks that bring assigned jobs' inputs; `output`; `replication`. */
  purpose: subscriptionPurposeSchema.optional(),
  limit: limit(10_000, 200),
});

export const summaryQuerySchema = z.object({
  windowMs: z.coerce
    .number()
    .int()
    .positive()
    .max(30 * 86_400_000)
    .default(3_600_000),
});

export const incidentsQuerySchema = z.object({
  q: z.string().min(1).max(200).optional(),
  site: z.string().min(1).optional(),
  source: incidentSourceSchema.optional(),
  jobId: z.string().min(1).optional(),
  since: epochMs.optional(),
  limit: limit(1000, 100),
});

export const incidentBodySchema = z.object({
  message: z.string().min(1).max(4000),
  level: incidentLevelSchema.default("error"),
  site: nameSchema.optional(),
  jobId: nameSchema.optional(),
  /** The reporting pilot's id, when a pilot reports. */
  pilotId: nameSchema.optional(),
  errorClass: z.string().min(1).max(50).optional(),
  errorCode: z.string().min(1).max(100).optional(),
  details: z.record(z.string(), z.unknown()).default({}),
});

/** How long a created token lives, when it should expire: at most ten years. */
const tokenTtlSecSchema = z
  .number()
  .int()
  .positive()
  .max(10 * 366 * 86_400)
  .optional();

export const tokenBodySchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("user"),
    user: z.string().min(1).max(100),
    role: roleSchema,
    ttlSec: tokenTtlSecSchema,
  }),
  z.object({ kind: z.literal("pilot"), site: nameSchema, ttlSec: tokenTtlSecSchema }),
]);
