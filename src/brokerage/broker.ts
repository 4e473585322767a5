import { exclusionsFor } from "./filter.js";
import { type InputLocality, inputLocality, scoreComponents, scoreOf } from "./score.js";
import {
  type BrokerageDecision,
  type BrokerageInput,
  BrokerageInputError,
  type CandidateVerdict,
  DEFAULT_BROKERAGE_CONFIG,
  type SiteSnapshot,
} from "./types.js";

interface Scored {
  verdict: CandidateVerdict & { score: number };
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
    const components = scoreComponents(site, locality, config);
    const exclusions = exclusionsFor(job, site, { nowMs, config });
    if (exclusions.length > 0) {
      excluded.push({ site: site.name, excluded: exclusions, components });
    } else {
      eligible.push({
        verdict: { site: site.name, score: scoreOf(components, config), components },
        locality,
      });
    }
  }
  eligible.sort((a, b) => b.verdict.score - a.verdict.score || compareNames(a.verdict.site, b.verdict.site));
  excluded.sort((a, b) => compareNames(a.site, b.site));

  const drawn = drawAmong(eligible, input.random, config.randomTopCandidates);
  const totalWeight = drawn ? drawn.reduce((sum, s) => sum + s.verdict.score, 0) : 0;
  const chosen = drawn ? draw(drawn, totalWeight, input.random!) : eligible[0];
  const missing = chosen?.locality.missing ?? [];
  return {
    jobId: job.jobId,
    chosenSite: chosen?.verdict.site ?? null,
    candidates: [...eligible.map((e) => e.verdict), ...excluded],
    ...(drawn
      ? {
          draw: {
            among: drawn.length,
            totalWeight,
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

/** One of the top sites in proportion to its score (all alike when every score is 0); `total` is their sum. */
function draw(top: Scored[], total: number, random: number): Scored {
  if (total <= 0) return top[Math.min(top.length - 1, Math.floor(random * top.length))]!;
  let target = random * total;
  for (const candidate of top) {
    target -= candidate.verdict.score;
    if (target < 0) return candidate;
  }
  // random === 1 (or rounding) lands past the end: the last of the top is the fair answer.
  return top[top.length - 1]!;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
