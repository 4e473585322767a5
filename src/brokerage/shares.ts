/** Global fair shares: their configuration, which share a job draws on, and the order a site's shares are served in. */
import { z } from "zod";
import { JobTypeSchema as jobTypeSchema } from "./types.js";

/** The share of jobs no configured share claims, and of jobs made before shares were configured. */
export const DEFAULT_SHARE = "default";

/** Share names are part of queue and counter names (`:`-separated): letters, digits, `.`, `_`, `-`. */
const shareNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 letters, digits, '.', '_' or '-'");

const shareSchema = z.object({
  name: shareNameSchema,
  /** The part of each site's running slots this share should hold, in percent; the shares add up to 100. */
  percent: z.number().positive().max(100),
  /** Which jobs draw on the share: every criterion given must hold; none given matches every job. */
  match: z
    .object({
      types: z.array(jobTypeSchema).min(1).optional(),
      groups: z.array(z.string().min(1)).min(1).optional(),
      users: z.array(z.string().min(1)).min(1).optional(),
    })
    .strict()
    .default({}),
});
export type Share = z.output<typeof shareSchema>;

export const fairShareConfigSchema = z
  .object({
    /**
     * The grid's shares, first match wins; a job no share matches draws on
     * the last one. Empty: one share, `default`, holds every job.
     */
    shares: z.array(shareSchema).default([]),
    /** Every Nth pick at a site takes the share whose head job waited longest, so no share starves; 0 never. */
    ageOnlyEvery: z.number().int().nonnegative().default(10),
    /**
     * PanDA's rule for analysis: a job's priority falls one point for every
     * this many jobs its user already has active (activated to transferring)
     * when it is brokered; 0 turns the rule off.
     */
    jobsPerPriorityStep: z.number().int().nonnegative().default(5),
  })
  .strict()
  .superRefine((config, issues) => {
    const seen = new Set<string>();
    config.shares.forEach((share, i) => {
      if (seen.has(share.name))
        issues.addIssue({
          code: "custom",
          path: ["shares", i, "name"],
          message: `share ${share.name} twice`,
        });
      seen.add(share.name);
    });
    if (config.shares.length === 0) return;
    const total = config.shares.reduce((sum, s) => sum + s.percent, 0);
    if (Math.abs(total - 100) > 1e-6)
      issues.addIssue({
        code: "custom",
        path: ["shares"],
        message: `the shares' percent add up to ${total}, not 100`,
      });
  });
export type FairShareConfig = z.output<typeof fairShareConfigSchema>;

/** Whose share a job draws on. */
export interface ShareSubject {
  user: string;
  group: string | null;
  type: z.infer<typeof jobTypeSchema>;
}

/** The shares a grid serves: the configured ones, or `default` alone. */
export function effectiveShares(config: FairShareConfig): readonly Share[] {
  return config.shares.length > 0 ? config.shares : [{ name: DEFAULT_SHARE, percent: 100, match: {} }];
}

/** The share a job draws on: the first that matches it, else the last. */
export function shareOf(job: ShareSubject, shares: readonly Share[]): string {
  for (const share of shares) if (matches(share, job)) return share.name;
  return shares[shares.length - 1]?.name ?? DEFAULT_SHARE;
}

function matches({ match }: Share, job: ShareSubject): boolean {
  return (
    (match.types === undefined || match.types.includes(job.type)) &&
    (match.groups === undefined || (job.group !== null && match.groups.includes(job.group))) &&
    (match.users === undefined || match.users.includes(job.user))
  );
}

/**
 * A user's analysis job's current priority: one point lower per
 * `jobsPerStep` jobs the user already has active, so a user with a flood of
 * jobs yields to users with few (PanDA's rule). Production keeps its own.
 * Kept within the range a task's priority may take.
 */
export function userPriority(
  basePriority: number,
  type: ShareSubject["type"],
  userActiveJobs: number,
  jobsPerStep: number,
): number {
  if (type !== "analysis" || jobsPerStep === 0) return basePriority;
  return Math.max(MIN_PRIORITY, basePriority - Math.floor(Math.max(0, userActiveJobs) / jobsPerStep));
}

/** The lowest priority a task may ask for; a current priority never falls below it. */
export const MIN_PRIORITY = -1_000_000;

/** One share at one site, as the dispatcher weighs it. */
export interface ShareStanding {
  name: string;
  /** Its part of the site, 0..1; 0 for a share not configured (old jobs'), served last. */
  target: number;
  /** Jobs of the share on the site's pilots (sent, starting, running), with those being bound now. */
  running: number;
  /** When its best job was activated (seconds), or null when this node sees none waiting. */
  headSinceSec: number | null;
}

/**
 * The order to look in a site's share queues: the most under-served share
 * first (running over target, lowest first; ties in configuration order),
 * or, on an age pick, the share whose best job waited longest first.
 * O(shares log shares), whatever the queues hold.
 */
export function shareOrder(standings: readonly ShareStanding[], byAge: boolean): ShareStanding[] {
  const order = [...standings];
  const served = (s: ShareStanding) => (s.target > 0 ? s.running / s.target : Number.POSITIVE_INFINITY);
  const byServed = (a: ShareStanding, b: ShareStanding) => {
    const d = served(a) - served(b);
    return Number.isNaN(d) ? 0 : d;
  };
  if (!byAge) return order.sort(byServed);
  const age = (s: ShareStanding) => s.headSinceSec ?? Number.POSITIVE_INFINITY;
  return order.sort((a, b) => age(a) - age(b) || byServed(a, b));
}
