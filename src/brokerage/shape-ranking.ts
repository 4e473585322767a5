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
 * What a site's verdict on a job depends on when the site holds none of its
 * inputs: every need but the ids and the priority, which no filter or score
 * reads (user and group only where some site restricts access), and the
 * locality such a site scores. A field added to `JobNeeds` is part of it.
 */
export function shapeKeyOf(
  job: JobNeeds,
  nowhere: InputLocality,
  config: BrokerageConfig,
  accessRestricted: boolean,
): string {
  const { jobId: _jobId, taskId: _taskId, priority: _priority, inputs: _inputs, ...needs } = job;
  const fields = Object.entries(needs)
    .filter(([name]) => accessRestricted || (name !== "user" && name !== "group"))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    fields,
    localityFactor(nowhere, config),
    nowhere.missing.length,
    nowhere.localBytes,
  ]);
}
