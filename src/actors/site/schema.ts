/** The site's statuses, events, resources, thresholds and context, as zod schemas and types. */
import { z } from "zod";
import { DEFAULT_REASSIGN_AFTER_MS, jobStateSchema } from "../job/schema.js";
import {
  type AsReceived,
  atMsSchema,
  durationMsSchema,
  type ErrorClass,
  errorClassSchema,
  jobTypeSchema,
  nameSchema,
} from "../shared/schemas.js";

export const SITE_STATUSES = ["online", "offline", "test", "brokeroff"] as const;
export const siteStatusSchema = z.enum(SITE_STATUSES);
export type SiteStatus = z.infer<typeof siteStatusSchema>;

export const siteResourcesSchema = z.object({
  slots: z.number().int().nonnegative(),
  memoryPerSlotMb: z.number().int().positive(),
  diskMb: z.number().int().nonnegative(),
  walltimeSec: z.object({ min: z.number().int().nonnegative(), max: z.number().int().positive() }),
  releases: z.array(z.string().min(1)).default([]),
});
export type SiteResources = z.infer<typeof siteResourcesSchema>;

export const siteThresholdsSchema = z.object({
  /** Failed / (finished + failed) in the window at which the site turns itself brokeroff. */
  blackHoleFailureFraction: z.number().gt(0).lte(1).default(0.7),
  /** Ended jobs the window must hold before the fraction means anything. */
  blackHoleMinJobs: z.number().int().positive().default(20),
  failureWindowMs: durationMsSchema.default(3_600_000),
  recoverySuccesses: z.number().int().positive().default(3),
  maxIncidents: z.number().int().positive().default(20),
  pilotWindowMs: durationMsSchema.default(10 * 60_000),
  /** A job waiting `assigned` or `activated` here longer than this is closed and brokered again. */
  reassignAfterMs: durationMsSchema.positive().default(DEFAULT_REASSIGN_AFTER_MS),
});
export type SiteThresholds = z.infer<typeof siteThresholdsSchema>;

export const siteInputSchema = z.object({
  name: nameSchema,
  status: siteStatusSchema.default("online"),
  resources: siteResourcesSchema,
  storageElement: z.string().min(1).nullable().default(null),
  thresholds: siteThresholdsSchema.prefault({}),
  atMs: atMsSchema,
});
export type SiteInput = z.input<typeof siteInputSchema>;

export const siteEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: siteInputSchema }),
  z.object({
    type: z.literal("job.state"),
    jobId: nameSchema,
    /** Null when the job had no earlier state (never the case once a job has a site, kept for safety). */
    from: jobStateSchema.nullable(),
    to: jobStateSchema,
    jobType: jobTypeSchema,
    errorClass: errorClassSchema.optional(),
    /** The failure's code within its class (an exit code, a pilot error code), for the errors page. */
    errorCode: z.string().max(200).optional(),
    /** The job was closed to be brokered again: the site is not judged on it. */
    reassigned: z.boolean().optional(),
    atMs: atMsSchema,
  }),
  z.object({
    type: z.literal("setStatus"),
    status: siteStatusSchema,
    by: z.string().min(1),
    reason: z.string(),
    atMs: atMsSchema,
  }),
  /** `requests`: how many pilot requests the report stands for (told together; 1 when absent). */
  z.object({
    type: z.literal("pilot.seen"),
    pilotId: nameSchema.optional(),
    requests: z.number().int().positive().optional(),
    atMs: atMsSchema,
  }),
  /** An operator asks the pilots connected now to finish their work and exit (`pilot.drain`). */
  z.object({ type: z.literal("drain"), by: z.string().min(1), reason: z.string(), atMs: atMsSchema }),
  /**
   * A healthy pilot factory serves the site: pilots come when work does, so
   * brokerage must not skip the site for having none yet. Not a pilot request.
   */
  z.object({ type: z.literal("pilots.provisioned"), factory: nameSchema, atMs: atMsSchema }),
]);
export type SiteEvent = AsReceived<z.infer<typeof siteEventSchema>, SiteInput>;
export type JobStateEvent = Extract<SiteEvent, { type: "job.state" }>;

/** One ended job as the site counts it. */
export type RecentOutcome = {
  atMs: number;
  outcome: "finished" | "failed" | "closed";
  errorClass: ErrorClass | null;
};

export interface SiteIncident {
  openedAtMs: number | null;
  closedAtMs: number | null;
  closedBy: string | null;
  /** Finished jobs and failures the site is to blame for, in the window; `failed` is the latter. */
  jobs: number;
  failed: number;
  failureFraction: number;
  /** Failures that were the users' (payload errors, walltime overruns), not counted above; absent in older incidents. */
  userFailed?: number;
  errorClasses: Partial<Record<ErrorClass, number>>;
}

/** Ended jobs counted per bucket of a twelfth of the failure window: constant size however busy the site. */
export interface OutcomeBucket {
  startMs: number;
  finished: number;
  failed: number;
  closed: number;
  /** Failed jobs per error class. */
  errorClasses: Partial<Record<ErrorClass, number>>;
}

/** Ended jobs of one lane in one hour; `transferFailed` are the failures of class stagein or stageout. */
export interface LaneOutcomes {
  finished: number;
  failed: number;
  closed: number;
  cancelled: number;
  transferFailed: number;
}

/** One hour of ended jobs (see `hourly.ts`). */
export interface HourBucket {
  startMs: number;
  production: LaneOutcomes;
  analysis: LaneOutcomes;
  /** Failures by `class:code`: how many, and the last job that failed so. */
  errors: Record<string, { count: number; lastJobId: string }>;
}

/** Pilot requests counted per bucket of a tenth of the window, so the count stays small however busy the site. */
export interface PilotRequestBucket {
  startMs: number;
  count: number;
}

export interface SiteContext {
  name: string;
  status: SiteStatus;
  statusInfo: { sinceMs: number | null; by: string; reason: string };
  resources: SiteResources;
  storageElement: string | null;
  thresholds: SiteThresholds;
  totals: { finished: number; failed: number; cancelled: number; closed: number };
  /** Finished, failed and closed jobs (not cancelled: a kill says nothing about the site) in the failure window. */
  outcomes: OutcomeBucket[];
  consecutiveSuccesses: number;
  /** Ended jobs per hour over the last day, per lane, and failures per class and code. */
  hours: HourBucket[];
  incidents: SiteIncident[];
  pilots: { lastSeenAtMs: number | null; requests: PilotRequestBucket[] };
  /** The last drain asked for: every node tells the pilots it held then, when they next ask for work. */
  drain: { atMs: number | null; by: string; reason: string } | null;
  lastAtMs: number | null;
}
