/**
 * The brokerage's inputs and decision: job needs, site snapshots, configuration, verdicts, as zod
 * schemas and types.
 */
import { z } from "zod";
import { describeIssues } from "../protocol/codec.js";

const count = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();
const fraction = z.number().min(0).max(1);

export const JobTypeSchema = z.enum(["production", "analysis"]);
export type JobType = z.infer<typeof JobTypeSchema>;

export const InputFileSchema = z.object({
  lfn: z.string().min(1),
  sizeBytes: count,
});
export type InputFile = z.infer<typeof InputFileSchema>;

/** What one job asks of a site; brokerage reads nothing else about the job. */
export const JobNeedsSchema = z.object({
  jobId: z.string().min(1),
  taskId: z.string().min(1),
  user: z.string().min(1),
  group: z.string().min(1).optional(),
  type: JobTypeSchema,
  priority: z.number().int(),
  cores: positiveInt,
  memoryMb: count,
  diskMb: count,
  walltimeSec: count,
  release: z.string().min(1).optional(),
  inputs: z.array(InputFileSchema),
  /** Test jobs are the only ones a site in `test` status accepts. */
  isTest: z.boolean().optional(),
});
export type JobNeeds = z.infer<typeof JobNeedsSchema>;

export const SiteStatusSchema = z.enum(["online", "offline", "test", "brokeroff"]);
export type SiteStatus = z.infer<typeof SiteStatusSchema>;

export const SiteResourcesSchema = z.object({
  slots: count,
  memoryMbPerSlot: count,
  diskMb: count,
  maxWalltimeSec: count,
  minWalltimeSec: count.optional(),
  releases: z.array(z.string()),
});
export type SiteResources = z.infer<typeof SiteResourcesSchema>;

export const SiteStatsSchema = z.object({
  /** defined + assigned + activated + starting at this site. */
  queued: count,
  activated: count,
  assigned: count,
  running: count,
  pilots: count,
  pilotRequestRatePerMin: z.number().nonnegative(),
  lastPilotSeenMs: z.number().nonnegative().optional(),
  transferring: count,
  recentFinished: count,
  /** Recent failures keyed by error class (pilot, payload, stagein, ...). */
  recentFailed: z.record(z.string(), count),
  recentClosed: count,
});
export type SiteStats = z.infer<typeof SiteStatsSchema>;

export const SiteSnapshotSchema = z.object({
  name: z.string().min(1),
  status: SiteStatusSchema,
  resources: SiteResourcesSchema,
  allowedUsers: z.array(z.string()).optional(),
  allowedGroups: z.array(z.string()).optional(),
  stats: SiteStatsSchema,
});
export type SiteSnapshot = z.infer<typeof SiteSnapshotSchema>;

/** Exponents on the score components; 0 switches a component off, 2 makes it count twice. */
export const ScoreWeightsSchema = z.object({
  load: z.number().nonnegative().default(1),
  locality: z.number().nonnegative().default(1),
  failure: z.number().nonnegative().default(1),
  pilotRate: z.number().nonnegative().default(1),
});

/** Every tunable of brokerage in one place, with PanDA/JEDI's defaults where they exist. */
export const BrokerageConfigSchema = z.object({
  weights: ScoreWeightsSchema.default(ScoreWeightsSchema.parse({})),
  /** JEDI leaves 10% headroom: a site's advertised memory is not all usable by the payload. */
  memoryUsableFraction: fraction.default(0.9),
  /** A site whose pilots have been silent this long is not sent work. */
  pilotSilenceWindowMs: count.default(3 * 60 * 60 * 1000),
  transferringCapMin: count.default(20),
  transferringCapRunningRatio: z.number().nonnegative().default(2),
  queueCapMin: count.default(20),
  queueCapRunningRatio: z.number().nonnegative().default(2),
  /** Analysis sites with at least this many recent bad jobs (and twice as many as good ones) are skipped. */
  blackHoleMinBadJobs: count.default(20),
  /**
   * Error classes that say nothing about the site: a user's payload error or
   * walltime overrun, a kill, a brokerage failure. The complement of the site
   * actor's `SITE_ERROR_CLASSES`, so brokerage and black-hole detection blame
   * a site for the same failures.
   */
  siteNeutralErrorClasses: z.array(z.string()).default(["payload", "timeout", "killed", "brokerage"]),
  /** The load weight is damped once assigned jobs exceed max(min, ratio x activated). */
  assignedDampingMin: count.default(20),
  assignedDampingActivatedRatio: z.number().nonnegative().default(2),
  /** JEDI divides locality by (filesToMove / 100 + 1). */
  localityFilesDivisor: z.number().positive().default(100),
  /** Pseudo-count of good jobs so that one early failure does not condemn a quiet site. */
  failureRatePrior: z.number().nonnegative().default(5),
  failurePenaltyStrength: z.number().nonnegative().default(4),
  /** Request rate at which the pilot factor reaches half of its maximum bonus. */
  pilotRateHalfPerMin: z.number().positive().default(10),
  pilotRateMaxBonus: z.number().nonnegative().default(1),
  /** With a random number given, the choice is made among this many best sites. */
  randomTopCandidates: positiveInt.default(5),
});
export type BrokerageConfig = z.infer<typeof BrokerageConfigSchema>;
export type BrokerageConfigInput = z.input<typeof BrokerageConfigSchema>;

export const DEFAULT_BROKERAGE_CONFIG: BrokerageConfig = BrokerageConfigSchema.parse({});

/** Logical file names with a complete replica at each site. */
export const SiteReplicasSchema = z.record(z.string(), z.array(z.string()));
export type SiteReplicas = z.infer<typeof SiteReplicasSchema>;

export const BrokerageInputSchema = z.object({
  job: JobNeedsSchema,
  sites: z.array(SiteSnapshotSchema),
  replicas: SiteReplicasSchema.optional(),
  nowMs: z.number().nonnegative(),
  /** Absent means DEFAULT_BROKERAGE_CONFIG; resolve a partial one once with resolveBrokerageConfig. */
  config: BrokerageConfigSchema.optional(),
  /** A number in [0, 1) to pick among the best sites by weight; absent means always the best. */
  random: z.number().min(0).max(1).optional(),
});
export type BrokerageInput = z.infer<typeof BrokerageInputSchema>;

export type FilterName =
  | "status"
  | "cores"
  | "memory"
  | "disk"
  | "walltime"
  | "release"
  | "access"
  | "pilots"
  | "transferring"
  | "queueCap"
  | "blackHole"
  /** Left out before scoring: an earlier attempt failed there. */
  | "excluded"
  /** Left out before scoring: the user asked for another site. */
  | "requestedSite";

export interface Exclusion {
  filter: FilterName;
  reason: string;
}

/** The factors of a site's score; score = product of each factor raised to its weight. */
export interface ScoreComponents {
  load: number;
  assignedDamping: number;
  locality: number;
  failure: number;
  pilotRate: number;
  localBytes: number;
  filesToMove: number;
}

export interface CandidateVerdict {
  site: string;
  /** Present only for sites that passed every filter. */
  score?: number;
  /** Every filter the site failed; present only for excluded sites. */
  excluded?: Exclusion[];
  components: ScoreComponents;
}

export interface BrokerageDecision {
  jobId: string;
  chosenSite: string | null;
  candidates: CandidateVerdict[];
  /** Inputs the chosen site lacks; empty when nothing was chosen. */
  filesToMove: string[];
  /** Present when the winner was drawn at random among the best few sites (see `DrawRecord`). */
  draw?: DrawRecord;
  /** Candidates left out of `candidates` to keep the record small (see `maxRecordedCandidates`). */
  omittedCandidates?: number;
  bytesToMove: number;
  atMs: number;
}

/**
 * A weighted draw among the best `randomTopCandidates` eligible sites (more
 * than one). Compact: on a grid of hundreds of sites the weight of every site
 * drawn among would dominate each job's record, so a trimmed decision keeps
 * the weights of the sites it records and the two numbers that give each of
 * them its exact chance. Decisions recorded before held only `candidates`,
 * every site drawn among (see `src/monitor/brokerage-draw.ts`).
 */
export interface DrawRecord {
  /** How many sites were drawn among. */
  among: number;
  /** The sum of their weights: a site's chance is its weight over this (1 / `among` when it is 0). */
  totalWeight: number;
  /**
   * Sites drawn among with their weights (their scores), best first: every
   * one as `broker` returns the decision; once trimmed, those still among the
   * decision's `candidates`, and the lowest-weighted site of the draw last.
   */
  candidates: { site: string; weight: number }[];
}

export class BrokerageInputError extends Error {
  override readonly name = "BrokerageInputError";
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid brokerage input: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  }
}

/** Validates input that came from outside the process; throws naming every bad field. */
export function parseBrokerageInput(value: unknown): BrokerageInput {
  const result = BrokerageInputSchema.safeParse(value);
  if (!result.success) throw new BrokerageInputError(describeIssues(result.error));
  return result.data;
}

export function resolveBrokerageConfig(partial: BrokerageConfigInput = {}): BrokerageConfig {
  const result = BrokerageConfigSchema.safeParse(partial);
  if (!result.success) throw new BrokerageInputError(describeIssues(result.error));
  return result.data;
}
