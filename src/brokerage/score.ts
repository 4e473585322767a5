/** A site's score for a job: input locality, load, failures, and the factors weighing them. */
import { siteBadJobs } from "./filter.js";
import type { BrokerageConfig, InputFile, JobNeeds, ScoreComponents, SiteSnapshot } from "./types.js";

export interface InputLocality {
  totalBytes: number;
  localBytes: number;
  /** Inputs without a complete replica at the site, each once. */
  missing: InputFile[];
}

export function inputLocality(job: JobNeeds, completeLfns: ReadonlySet<string>): InputLocality {
  const seen = new Set<string>();
  let totalBytes = 0;
  let localBytes = 0;
  const missing: InputFile[] = [];
  for (const input of job.inputs) {
    // A file listed twice is still read once and moved once.
    if (seen.has(input.lfn)) continue;
    seen.add(input.lfn);
    totalBytes += input.sizeBytes;
    if (completeLfns.has(input.lfn)) localBytes += input.sizeBytes;
    else missing.push(input);
  }
  return { totalBytes, localBytes, missing };
}

/** JEDI's load weight: sites that run a lot relative to what waits there get more. */
function loadFactor(site: SiteSnapshot): number {
  return (site.stats.running + 1) / (site.stats.queued + 10);
}

/** Many assigned jobs mean transfers are already queued for the site; do not pile on. */
function assignedDampingFactor(site: SiteSnapshot, config: BrokerageConfig): number {
  const { assigned, activated } = site.stats;
  const threshold = Math.max(config.assignedDampingMin, config.assignedDampingActivatedRatio * activated);
  return assigned > threshold ? threshold / assigned : 1;
}

/** JEDI's `(totalInput + localInput) / totalInput / (filesToMove / 100 + 1)`, 1 for a job without input bytes. */
export function localityFactor(locality: InputLocality, config: BrokerageConfig): number {
  const { totalBytes, localBytes, missing } = locality;
  const bytesTerm = totalBytes === 0 ? 1 : (totalBytes + localBytes) / totalBytes;
  return bytesTerm / (missing.length / config.localityFilesDivisor + 1);
}

function failureFactor(site: SiteSnapshot, config: BrokerageConfig): number {
  const bad = siteBadJobs(site, config);
  const denominator = site.stats.recentFinished + bad + config.failureRatePrior;
  const rate = denominator === 0 ? 0 : bad / denominator;
  return 1 / (1 + config.failurePenaltyStrength * rate);
}

/** Frequent pilot requests mean free cores now; the bonus saturates so one busy site cannot take all. */
function pilotRateFactor(site: SiteSnapshot, config: BrokerageConfig): number {
  const rate = site.stats.pilotRequestRatePerMin;
  return 1 + (config.pilotRateMaxBonus * rate) / (rate + config.pilotRateHalfPerMin);
}

export function scoreComponents(
  site: SiteSnapshot,
  locality: InputLocality,
  config: BrokerageConfig,
): ScoreComponents {
  return {
    load: loadFactor(site),
    assignedDamping: assignedDampingFactor(site, config),
    locality: localityFactor(locality, config),
    failure: failureFactor(site, config),
    pilotRate: pilotRateFactor(site, config),
    localBytes: locality.localBytes,
    filesToMove: locality.missing.length,
  };
}

/** The product of the factors, each raised to its configured weight (damping shares the load weight). */
export function scoreOf(components: ScoreComponents, config: BrokerageConfig): number {
  const w = config.weights;
  return (
    (components.load * components.assignedDamping) ** w.load *
    components.locality ** w.locality *
    components.failure ** w.failure *
    components.pilotRate ** w.pilotRate
  );
}
