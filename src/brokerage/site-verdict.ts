/** One site's verdict for one job: excluded with a reason, or scored. */
import { exclusionsFor, type FilterContext } from "./filter.js";
import { type InputLocality, scoreComponents, scoreOf } from "./score.js";
import type { CandidateVerdict, JobNeeds, SiteSnapshot } from "./types.js";

/** A site that passed every filter, with its score. */
export type ScoredVerdict = CandidateVerdict & { score: number };

/** One site weighed for a job whose inputs it holds as `locality` says: its score, or every reason it is out. */
export function siteVerdict(
  job: JobNeeds,
  site: SiteSnapshot,
  locality: InputLocality,
  ctx: FilterContext,
): CandidateVerdict {
  const components = scoreComponents(site, locality, ctx.config);
  const exclusions = exclusionsFor(job, site, ctx);
  return exclusions.length > 0
    ? { site: site.name, excluded: exclusions, components }
    : { site: site.name, score: scoreOf(components, ctx.config), components };
}

export function isScored(verdict: CandidateVerdict): verdict is ScoredVerdict {
  return verdict.score !== undefined;
}

/** Brokerage's rank: best score first, then site names by code unit (the same on every machine). */
export function byRank(a: ScoredVerdict, b: ScoredVerdict): number {
  return b.score - a.score || compareNames(a.site, b.site);
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
