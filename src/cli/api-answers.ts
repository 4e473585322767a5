/**
 * The API's answers as the CLI reads them, one zod schema each, apart from
 * how they are fetched (`client.ts`). Loose objects: fields the CLI does not
 * show pass through untouched, so `--json` prints everything the server sent.
 */
import { z } from "zod";
import type { JobQuery } from "../workload/queries.js";

export const submitAnswerSchema = z.looseObject({
  taskId: z.string(),
  jobs: z.number(),
  /** Jobs of earlier submissions the server still holds for admission; older servers leave it out. */
  queuedAhead: z.number().optional(),
});

export const taskRowSchema = z.looseObject({
  taskId: z.string(),
  state: z.string(),
  user: z.string(),
  type: z.string(),
  jobCount: z.number(),
  counts: z.record(z.string(), z.number()),
});
export type TaskRow = z.infer<typeof taskRowSchema>;
export const tasksAnswerSchema = z.looseObject({ tasks: z.array(taskRowSchema) });

export const jobRowSchema = z.looseObject({
  jobId: z.string(),
  taskId: z.string(),
  attempt: z.number(),
  state: z.string(),
  site: z.string().nullable(),
  type: z.string(),
  error: z.looseObject({ class: z.string(), message: z.string() }).nullable(),
});
export type JobRow = z.infer<typeof jobRowSchema>;
export const jobsAnswerSchema = z.looseObject({
  jobs: z.array(jobRowSchema),
  nextOffset: z.number().nullable().optional(),
});

export const historyEntrySchema = z.looseObject({
  v: z.number(),
  at: z.number(),
  event: z.looseObject({ type: z.string() }),
  from: z.string().nullable(),
  to: z.string(),
  cause: z.string(),
  refused: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type HistoryRow = z.infer<typeof historyEntrySchema>;

/** The current view has context and status; a view `--at` a past time has only the state then. */
export const actorViewSchema = z.looseObject({
  kind: z.string(),
  id: z.string(),
  version: z.number(),
  state: z.string(),
  status: z.string().optional(),
  context: z.unknown().optional(),
  at: z.number().optional(),
  history: z.array(historyEntrySchema),
});
export type ActorViewAnswer = z.infer<typeof actorViewSchema>;

export const storedFileSchema = z.looseObject({
  lfn: z.string(),
  sizeBytes: z.number(),
  checksum: z.string(),
});

export const errorAnswerSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});

/** The API's job filters (`GET /jobs`), every one optional on the wire. */
export type JobsQuery = Partial<JobQuery>;

export const siteRowSchema = z.looseObject({
  name: z.string(),
  status: z.string(),
  jobs: z.record(z.string(), z.number()),
  totals: z.record(z.string(), z.number()),
  recent: z.looseObject({ jobs: z.number(), failed: z.number(), failureFraction: z.number() }),
  pilots: z.looseObject({ connectedToThisNode: z.number(), requestsPerMin: z.number() }),
});
export type SiteRow = z.infer<typeof siteRowSchema>;

export const datasetRowSchema = z.looseObject({
  name: z.string(),
  state: z.string(),
  fileCount: z.number(),
  totalBytes: z.number(),
  sites: z.array(z.string()),
});
export type DatasetRow = z.infer<typeof datasetRowSchema>;

export const datasetDetailSchema = z.looseObject({
  name: z.string(),
  state: z.string(),
  files: z.array(z.looseObject({ lfn: z.string(), sizeBytes: z.number(), checksum: z.string() })),
  replicas: z.array(z.looseObject({ site: z.string(), lfns: z.array(z.string()) })),
});
export type DatasetDetail = z.infer<typeof datasetDetailSchema>;

export const whyAnswerSchema = z.looseObject({
  jobId: z.string(),
  state: z.string(),
  site: z.string().nullable(),
  summary: z.array(z.string()),
});

export const tokenRowSchema = z.looseObject({
  tokenId: z.string(),
  principal: z.looseObject({
    kind: z.string(),
    user: z.string().optional(),
    role: z.string().optional(),
    site: z.string().optional(),
  }),
  source: z.string(),
  createdAtMs: z.number().nullable(),
  createdBy: z.string().nullable(),
  expiresAtMs: z.number().nullable().optional(),
});
export type TokenRow = z.infer<typeof tokenRowSchema>;

export const okAnswerSchema = z.looseObject({});
export const reassignAnswerSchema = z.looseObject({
  reassigned: z.array(z.looseObject({ jobId: z.string(), nextJobId: z.string() })),
  skipped: z.array(z.looseObject({ jobId: z.string(), state: z.string() })),
});
export const drainAnswerSchema = z.looseObject({ pilotsTold: z.number() });
export const createdTokenSchema = z.looseObject({
  token: z.string(),
  tokenId: z.string(),
  principal: z.looseObject({}),
  expiresAtMs: z.number().nullable().optional(),
});
export const taskDetailSchema = taskRowSchema.extend({
  progress: z.looseObject({ endedJobs: z.number(), percentEnded: z.number() }),
});
export type TaskDetail = z.infer<typeof taskDetailSchema>;

export const pilotJobRowSchema = z.looseObject({
  id: z.string(),
  factory: z.string(),
  queue: z.string(),
  site: z.string(),
  batchSystem: z.string(),
  batchId: z.string().nullable(),
  pilots: z.number(),
  state: z.string(),
  exitCode: z.number().nullable(),
  reason: z.string().nullable(),
  cancelReason: z.string().nullable(),
  timestamps: z.record(z.string(), z.number()),
});
export type PilotJobRow = z.infer<typeof pilotJobRowSchema>;
export const pilotJobAnswerSchema = z.looseObject({ pilotJob: pilotJobRowSchema, applied: z.boolean() });

export const factoryRowSchema = z.looseObject({
  name: z.string(),
  reportedAtMs: z.number().nullable(),
  host: z.string().optional(),
  pollSeconds: z.number().optional(),
  queues: z.array(
    z.looseObject({
      name: z.string(),
      site: z.string(),
      batchSystem: z.string(),
      jobs: z.object({ submitting: z.number(), queued: z.number(), running: z.number() }),
      submissionsPerMin: z.number(),
      throttle: z.looseObject({
        throttled: z.boolean(),
        reason: z.string().nullable(),
        sinceMs: z.number().nullable(),
        backoffSec: z.number(),
        consecutiveFastFailures: z.number(),
      }),
      lastError: z.string().nullable(),
      reportedAtMs: z.number().nullable(),
    }),
  ),
});
export type FactoryRow = z.infer<typeof factoryRowSchema>;

export const demandAnswerSchema = z.looseObject({
  site: z.string(),
  activated: z.number(),
  assigned: z.number(),
  idleThreads: z.number(),
});

/** `PUT /sandboxes/<sha256>`: stored (created) or already there. */
export const sandboxUploadSchema = z.object({
  sha256: z.string(),
  sizeBytes: z.number(),
  created: z.boolean(),
});

export const sandboxRowSchema = z.object({
  sha256: z.string(),
  sizeBytes: z.number(),
  createdMs: z.number(),
  lastUsedMs: z.number(),
  owners: z.array(z.string()),
  tasks: z.array(z.string()),
});
export type SandboxRow = z.infer<typeof sandboxRowSchema>;

/** `GET /api/v1/sandboxes`. */
export const sandboxListSchema = z.object({
  sandboxes: z.array(sandboxRowSchema),
  maxBytes: z.number().nullable(),
  retentionMs: z.number().nullable(),
});
