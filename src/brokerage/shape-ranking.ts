/** Every site ranked once per read of the sites and job shape, with exact running sums of the scores. */
import type { Partials } from "./exact-sum.js";
import { prefixPartials } from "./exact-sum.js";
import { verdictsHoldUntilMs } from "./filter.js";
import { type InputLocality, inputLocality, localityFactor } from "./score.js";
import { byRank, isScored, type ScoredVerdict, siteVerdict } from "./site-verdict.js";
import type { BrokerageConfig, CandidateVerdict, JobNeeds, SiteSnapshot } from "./types.js";

/**
 * Every site of one read weighed once for a job shape (see `shapeKeyOf`), as
 * for a job whose inputs no site holds: a decision for any job of that shape
 * then weighs again only the few sites that hold its inputs or that it
 * leaves out (see `PatchedRanking`), instead of every site of the grid.
 */
export interface ShapeRanking {
  /** Its verdicts were taken at `builtAtMs` and hold until `validUntilMs` (inclusive). */
  builtAtMs: number;
  validUntilMs: number;
  /** Every site of the read, by name. */
  sites: ReadonlyMap<string, SiteSnapshot>;
  /** Sites that passed every filter, in rank order, with the exact running sums of their scores. */
  ranked: readonly ScoredVerdict[];
  prefixes: readonly Partials[];
  /** Each ranked site's index in `ranked`. */
  rankOf: ReadonlyMap<string, number>;
  /** The ranked sites best score first, equal scores in name order: the order a trimmed record keeps the best in. */
  best: readonly ScoredVerdict[];
  /** Sites a filter left out, in name order. */
  excluded: readonly CandidateVerdict[];
}

export interface RankingOptions {
  nowMs: number;
  config: BrokerageConfig;
  /** The order decisions list sites in (the brokerage service's collation). */
  nameOrder: (a: string, b: string) => number;
}

export function rankShape(
  job: JobNeeds,
  sites: readonly SiteSnapshot[],
  options: RankingOptions,
): ShapeRanking {
  const { nowMs, config, nameOrder } = options;
  const nowhere = inputLocality(job, new Set());
  const ranked: ScoredVerdict[] = [];
  const excluded: CandidateVerdict[] = [];
  let validUntilMs = Number.POSITIVE_INFINITY;
  for (const site of sites) {
    const verdict = siteVerdict(job, site, nowhere, { nowMs, config });
    if (isScored(verdict)) ranked.push(verdict);
    else excluded.push(verdict);
    validUntilMs = Math.min(validUntilMs, verdictsHoldUntilMs(site, nowMs, config));
  }
  ranked.sort(byRank);
  return {
    builtAtMs: nowMs,
    validUntilMs,
    sites: new Map(sites.map((s) => [s.name, s])),
    ranked,
    prefixes: prefixPartials(ranked.map((v) => v.score)),
    rankOf: new Map(ranked.map((v, i) => [v.site, i])),
    best: [...ranked].sort((a, b) => b.score - a.score || nameOrder(a.site, b.site)),
    excluded: excluded.sort((a, b) => nameOrder(a.site, b.site)),
  };
}

/** Whether some site admits only some users or groups: then the user and group are part of a job's shape. */
export function restrictsAccess(sites: readonly SiteSnapshot[]): boolean {
  return sites.some((s) => (s.allowedUsers?.length ?? 0) > 0 || (s.allowedGroups?.length ?? 0) > 0);
}

/**
 * The needs a site's verdict on a job reads, besides where its inputs are.
 * Every other field of `JobNeeds` is in `NOT_READ_BY_VERDICTS`; a test
 * checks that the two lists cover the schema, so a new field must be sorted
 * into one of them.
 */
export const SHAPE_FIELDS = [
  "type",
  "cores",
  "memoryMb",
  "diskMb",
  "walltimeSec",
  "release",
  "isTest",
] as const;
/** Read only where some site restricts access. */
export const ACCESS_FIELDS = ["user", "group"] as const;
/** Ids and priority: no filter or score reads them; inputs enter through the locality. */
export const NOT_READ_BY_VERDICTS = ["jobId", "taskId", "priority", "inputs"] as const;

/**
 * What a site's verdict on a job depends on when the site holds none of its
 * inputs: the shape fields, the user and group where some site restricts
 * access, and the locality such a site scores.
 */
export function shapeKeyOf(
  job: JobNeeds,
  nowhere: InputLocality,
  config: BrokerageConfig,
  accessRestricted: boolean,
): string {
  const key: unknown[] = SHAPE_FIELDS.map((field) => job[field]);
  if (accessRestricted) key.push(job.user, job.group);
  key.push(localityFactor(nowhere, config), nowhere.missing.length, nowhere.localBytes);
  return JSON.stringify(key);
}
