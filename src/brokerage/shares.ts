import { z } from "zod";
import { describeIssues } from "../protocol/codec.js";
import { compareByAge, compareForDispatch, type QueuedJob } from "./dispatch-order.js";
import { ownValue, prototypeFreeCopy } from "./records.js";
import { BrokerageInputError, type JobType } from "./types.js";

const fraction = z.number().min(0).max(1);

export const SharePolicySchema = z.object({
  /** Active jobs (running + activated) the site holds before shares start to bite. */
  capacityJobs: z.number().int().nonnegative(),
  /** The analysis part of the site; production gets the rest. */
  analysisFraction: fraction.default(0.5),
  /** Fractions of the site for named groups; groups not listed are not limited by group. */
  groupShares: z.record(z.string(), fraction).default({}),
  /** Active jobs one user may hold at the site, whatever room there is. */
  userActiveJobQuota: z.number().int().positive().default(1000),
  /** Share of releases made by age alone, so a job in a well-served share still gets out. */
  ageOnlyFraction: fraction.default(0.1),
});
export type SharePolicy = z.infer<typeof SharePolicySchema>;
export type SharePolicyInput = z.input<typeof SharePolicySchema>;

export function resolveSharePolicy(input: SharePolicyInput): SharePolicy {
  const result = SharePolicySchema.safeParse(input);
  if (!result.success) throw new BrokerageInputError(describeIssues(result.error));
  return result.data;
}

export interface ActiveCounts {
  running: number;
  activated: number;
}

/** A site's active jobs split the ways shares are defined. */
export interface ShareUsage {
  byType: Record<JobType, ActiveCounts>;
  byGroup: Record<string, ActiveCounts>;
  byUser: Record<string, number>;
}

/** Whose share a job draws on. */
export interface ShareSubject {
  user: string;
  group?: string | undefined;
  type: JobType;
}

export type ThrottledJob = ShareSubject & QueuedJob;

export type ShareVerdict =
  | { action: "activate" }
  | { action: "throttle"; share: "user" | "type" | "group"; reason: string };

export function emptyShareUsage(): ShareUsage {
  return { byType: { production: zero(), analysis: zero() }, byGroup: {}, byUser: {} };
}

/** May this job join the site's activated queue now, or must it wait throttled? */
export function decideActivation(job: ShareSubject, usage: ShareUsage, policy: SharePolicy): ShareVerdict {
  const userActive = ownValue(usage.byUser, job.user) ?? 0;
  if (userActive >= policy.userActiveJobQuota) {
    return {
      action: "throttle",
      share: "user",
      reason: `user ${job.user} has ${userActive} active jobs, quota ${policy.userActiveJobQuota}`,
    };
  }
  const total = totalActive(usage);
  // While the site has room nobody is crowded out, so shares are not enforced.
  if (total < policy.capacityJobs) return { action: "activate" };

  const typeShare = typeShareOf(job.type, policy);
  const typeServed = active(usage.byType[job.type]) / total;
  if (typeServed >= typeShare) {
    return {
      action: "throttle",
      share: "type",
      reason: `${job.type} holds ${percent(typeServed)} of a full site, share ${percent(typeShare)}`,
    };
  }
  const groupShare = job.group === undefined ? undefined : ownValue(policy.groupShares, job.group);
  if (job.group !== undefined && groupShare !== undefined) {
    const groupServed = active(ownValue(usage.byGroup, job.group)) / total;
    if (groupServed >= groupShare) {
      return {
        action: "throttle",
        share: "group",
        reason: `group ${job.group} holds ${percent(groupServed)} of a full site, share ${percent(groupShare)}`,
      };
    }
  }
  return { action: "activate" };
}

/**
 * Chooses, in order, up to `freeCount` throttled jobs to activate now that
 * room has freed: most under-served share first, then priority, then age;
 * a fraction `ageOnlyFraction` of picks goes to the oldest job regardless so
 * nothing starves. `random` returns numbers in [0, 1); the caller owns it so a
 * simulation can replay the same choices. Users at their quota stay throttled.
 */
export function pickJobsToRelease<T extends ThrottledJob>(
  throttled: readonly T[],
  usage: ShareUsage,
  policy: SharePolicy,
  freeCount: number,
  random: () => number,
): T[] {
  const projected = cloneUsage(usage);
  const waiting = [...throttled];
  const released: T[] = [];
  while (released.length < freeCount) {
    const releasable = waiting.filter(
      (j) => (ownValue(projected.byUser, j.user) ?? 0) < policy.userActiveJobQuota,
    );
    if (!isNonEmpty(releasable)) break;
    const pick =
      random() < policy.ageOnlyFraction
        ? minBy(releasable, compareByAge)
        : minBy(releasable, (a, b) => byServedRatio(a, b, projected, policy) || compareForDispatch(a, b));
    released.push(pick);
    waiting.splice(waiting.indexOf(pick), 1);
    countActivation(projected, pick);
  }
  return released;
}

/**
 * How well served the shares a job draws on are: active fraction over share,
 * the worse of its type and group shares. Below 1 means under-served.
 */
export function servedRatio(job: ShareSubject, usage: ShareUsage, policy: SharePolicy): number {
  const total = totalActive(usage);
  if (total === 0) return 0;
  const ratio = (activeCount: number, share: number) =>
    share === 0 ? Number.POSITIVE_INFINITY : activeCount / total / share;
  const typeRatio = ratio(active(usage.byType[job.type]), typeShareOf(job.type, policy));
  const groupShare = job.group === undefined ? undefined : ownValue(policy.groupShares, job.group);
  if (job.group === undefined || groupShare === undefined) return typeRatio;
  return Math.max(typeRatio, ratio(active(ownValue(usage.byGroup, job.group)), groupShare));
}

/**
 * A user's effective priority: one point lower per `jobsPerPoint` active jobs,
 * so a user with a flood of jobs yields to users with few.
 */
export function userPriority(basePriority: number, userActiveJobs: number, jobsPerPoint = 5): number {
  return basePriority - Math.floor(Math.max(0, userActiveJobs) / jobsPerPoint);
}

function byServedRatio(a: ShareSubject, b: ShareSubject, usage: ShareUsage, policy: SharePolicy): number {
  const ra = servedRatio(a, usage, policy);
  const rb = servedRatio(b, usage, policy);
  return ra === rb ? 0 : ra < rb ? -1 : 1;
}

function typeShareOf(type: JobType, policy: SharePolicy): number {
  return type === "analysis" ? policy.analysisFraction : 1 - policy.analysisFraction;
}

function totalActive(usage: ShareUsage): number {
  return active(usage.byType.production) + active(usage.byType.analysis);
}

function active(counts: ActiveCounts | undefined): number {
  return counts === undefined ? 0 : counts.running + counts.activated;
}

function countActivation(usage: ShareUsage, job: ShareSubject): void {
  usage.byType[job.type].activated += 1;
  if (job.group !== undefined) {
    const group = ownValue(usage.byGroup, job.group) ?? zero();
    group.activated += 1;
    usage.byGroup[job.group] = group;
  }
  usage.byUser[job.user] = (ownValue(usage.byUser, job.user) ?? 0) + 1;
}

function cloneUsage(usage: ShareUsage): ShareUsage {
  const byGroup = prototypeFreeCopy(usage.byGroup);
  for (const [group, counts] of Object.entries(byGroup)) byGroup[group] = { ...counts };
  return {
    byType: { production: { ...usage.byType.production }, analysis: { ...usage.byType.analysis } },
    byGroup,
    byUser: prototypeFreeCopy(usage.byUser),
  };
}

/** The least item by `compare`; callers guarantee at least one. */
function minBy<T>(items: readonly [T, ...T[]], compare: (a: T, b: T) => number): T {
  let best = items[0];
  for (const item of items) if (compare(item, best) < 0) best = item;
  return best;
}

function isNonEmpty<T>(items: T[]): items is [T, ...T[]] {
  return items.length > 0;
}

function zero(): ActiveCounts {
  return { running: 0, activated: 0 };
}

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}
