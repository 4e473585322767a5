/** `broker()`: one job's decision over every site, every candidate scored or excluded with its reason. */
import { type InputLocality, inputLocality } from "./score.js";
import { byRank, compareNames, isScored, type ScoredVerdict, siteVerdict } from "./site-verdict.js";
import {
  type BrokerageDecision,
  type BrokerageInput,
  BrokerageInputError,
  type CandidateVerdict,
  DEFAULT_BROKERAGE_CONFIG,
  type SiteSnapshot,
} from "./types.js";
import { drawIndex, rankedWeightsOf } from "./weighted-draw.js";

interface Scored {
  verdict: ScoredVerdict;
  locality: InputLocality;
}

/**
 * Chooses a site for one job. Pure and deterministic: the same input gives the
 * same decision, and the decision lists every site with its score or the
 * reasons it was excluded, so it can be stored and shown as the "why".
 */
export function broker(input: BrokerageInput): BrokerageDecision {
  const { job, sites, nowMs } = input;
  const config = input.config ?? DEFAULT_BROKERAGE_CONFIG;
  const replicas = input.replicas ?? {};
  assertUniqueSiteNames(sites);

  const eligible: Scored[] = [];
  const excluded: CandidateVerdict[] = [];
  // Most sites hold none of the job's inputs: they share one locality, computed once.
  const nowhere = inputLocality(job, new Set());
  const localBySite = new Map(Object.entries(replicas));
  for (const site of sites) {
    const local = localBySite.get(site.name);
    const locality = local && local.length > 0 ? inputLocality(job, new Set(local)) : nowhere;
    const verdict = siteVerdict(job, site, locality, { nowMs, config });
    if (isScored(verdict)) eligible.push({ verdict, locality });
    else excluded.push(verdict);
  }
  eligible.sort((a, b) => byRank(a.verdict, b.verdict));
  excluded.sort((a, b) => compareNames(a.site, b.site));

  const drawn = drawAmong(eligible, input.random, config.randomTopCandidates);
  const outcome = drawn ? drawIndex(rankedWeightsOf(drawn.map((s) => s.verdict.score)), input.random!) : null;
  const chosen = drawn && outcome ? drawn[outcome.index] : eligible[0];
  const missing = chosen?.locality.missing ?? [];
  return {
    jobId: job.jobId,
    chosenSite: chosen?.verdict.site ?? null,
    candidates: [...eligible.map((e) => e.verdict), ...excluded],
    ...(drawn && outcome
      ? {
          draw: {
            among: drawn.length,
            totalWeight: outcome.totalWeight,
            candidates: drawn.map((s) => ({ site: s.verdict.site, weight: s.verdict.score })),
          },
        }
      : {}),
    filesToMove: missing.map((f) => f.lfn),
    bytesToMove: missing.reduce((sum, f) => sum + f.sizeBytes, 0),
    atMs: nowMs,
  };
}

/** The best few sites a random number draws among, or null when the best site simply wins. */
function drawAmong(ranked: Scored[], random: number | undefined, topCount: number): Scored[] | null {
  if (random === undefined) return null;
  const top = ranked.slice(0, topCount);
  return top.length > 1 ? top : null;
}

/**
 * Frozen site lists (of frozen sites) already checked: a caller that reuses
 * one read of the sites for many jobs, as the brokerage service does, pays
 * for the check once. Freezing is what makes remembering it safe.
 */
const checkedSiteLists = new WeakSet<readonly SiteSnapshot[]>();

function assertUniqueSiteNames(sites: readonly SiteSnapshot[]): void {
  if (checkedSiteLists.has(sites)) return;
  const names = sites.map((s) => s.name);
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (seen.has(name)) {
      throw new BrokerageInputError([{ path: `sites.${i}.name`, message: `duplicate site name ${name}` }]);
    }
    seen.add(name);
  }
  if (Object.isFrozen(sites) && sites.every((s) => Object.isFrozen(s))) checkedSiteLists.add(sites);
}
