/**
 * The filters that exclude a site for a job (status, resources, release, access, silence, black
 * holes).
 */
import type { BrokerageConfig, Exclusion, FilterName, JobNeeds, SiteSnapshot } from "./types.js";

export interface FilterContext {
  nowMs: number;
  config: BrokerageConfig;
}

/** A filter answers why a site cannot take the job, or null when it can. */
type SiteFilter = (job: JobNeeds, site: SiteSnapshot, ctx: FilterContext) => string | null;

function statusFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  if (site.status === "online") return null;
  if (site.status === "test")
    return job.isTest ? null : "site is in test status and the job is not a test job";
  return `site status is ${site.status}`;
}

function coresFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  const { slots } = site.resources;
  return job.cores > slots ? `job needs ${job.cores} cores, site has ${slots} slots` : null;
}

function memoryFilter(job: JobNeeds, site: SiteSnapshot, { config }: FilterContext): string | null {
  // A multi-core job gets the memory of every slot it occupies.
  const usableMb = Math.floor(site.resources.memoryMbPerSlot * job.cores * config.memoryUsableFraction);
  return job.memoryMb > usableMb
    ? `job needs ${job.memoryMb} MB of memory, site offers ${usableMb} MB usable for ${job.cores} core(s)`
    : null;
}

function diskFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  const { diskMb } = site.resources;
  return job.diskMb > diskMb ? `job needs ${job.diskMb} MB of disk, site has ${diskMb} MB` : null;
}

function walltimeFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  const { maxWalltimeSec, minWalltimeSec } = site.resources;
  if (job.walltimeSec > maxWalltimeSec) {
    return `job needs ${job.walltimeSec} s of walltime, site allows at most ${maxWalltimeSec} s`;
  }
  if (minWalltimeSec !== undefined && job.walltimeSec < minWalltimeSec) {
    return `job needs ${job.walltimeSec} s of walltime, site takes only jobs of ${minWalltimeSec} s or more`;
  }
  return null;
}

function releaseFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  if (job.release === undefined || site.resources.releases.includes(job.release)) return null;
  return `release ${job.release} is not installed at the site`;
}

function accessFilter(job: JobNeeds, site: SiteSnapshot): string | null {
  const users = site.allowedUsers ?? [];
  const groups = site.allowedGroups ?? [];
  // An empty or absent list means the site does not restrict on it.
  if (users.length === 0 && groups.length === 0) return null;
  if (users.includes(job.user)) return null;
  if (job.group !== undefined && groups.includes(job.group)) return null;
  const group = job.group === undefined ? "no group" : `group ${job.group}`;
  return `user ${job.user} (${group}) is not allowed at the site`;
}

function pilotsFilter(_job: JobNeeds, site: SiteSnapshot, { nowMs, config }: FilterContext): string | null {
  const windowMs = config.pilotSilenceWindowMs;
  // Pilots connected right now count as seen now, whatever the last recorded time.
  const lastSeenMs = site.stats.pilots > 0 ? nowMs : site.stats.lastPilotSeenMs;
  if (lastSeenMs === undefined) return "no pilot has ever been seen at the site";
  const silentMs = nowMs - lastSeenMs;
  return silentMs > windowMs
    ? `no pilot seen for ${formatDuration(silentMs)} (limit ${formatDuration(windowMs)})`
    : null;
}

function transferringFilter(_job: JobNeeds, site: SiteSnapshot, { config }: FilterContext): string | null {
  const { transferring, running } = site.stats;
  const cap = Math.max(config.transferringCapMin, config.transferringCapRunningRatio * running);
  return transferring > cap ? `${transferring} jobs transferring exceeds the cap of ${cap}` : null;
}

function queueCapFilter(_job: JobNeeds, site: SiteSnapshot, { config }: FilterContext): string | null {
  const { queued, running } = site.stats;
  const cap = Math.max(config.queueCapMin, config.queueCapRunningRatio * running);
  return queued > cap ? `${queued} jobs queued exceeds the cap of ${cap} (running ${running})` : null;
}

/**
 * The last instant at which the filters' verdicts on a site, taken at
 * `nowMs`, still hold while its snapshot stays the same: whoever reuses
 * verdicts as time passes asks this. Only the pilots filter reads the time:
 * a site with no pilot connected is left out once its pilots' silence
 * exceeds the window, and stays out.
 */
export function verdictsHoldUntilMs(site: SiteSnapshot, nowMs: number, config: BrokerageConfig): number {
  const { pilots, lastPilotSeenMs } = site.stats;
  if (pilots > 0 || lastPilotSeenMs === undefined) return Number.POSITIVE_INFINITY;
  const lastPassingMs = lastPilotSeenMs + config.pilotSilenceWindowMs;
  return nowMs <= lastPassingMs ? lastPassingMs : Number.POSITIVE_INFINITY;
}

/** Recent failures the site is to blame for, plus closed jobs, as JEDI counts them. */
export function siteBadJobs(site: SiteSnapshot, config: BrokerageConfig): number {
  let failed = 0;
  const byClass = site.stats.recentFailed;
  // Called for every site in every decision: a plain loop over the own keys, no entries array.
  for (const errorClass in byClass) {
    if (Object.hasOwn(byClass, errorClass) && !config.siteNeutralErrorClasses.includes(errorClass))
      failed += byClass[errorClass]!;
  }
  return failed + site.stats.recentClosed;
}

function blackHoleFilter(job: JobNeeds, site: SiteSnapshot, { config }: FilterContext): string | null {
  if (job.type !== "analysis") return null;
  const bad = siteBadJobs(site, config);
  const finished = site.stats.recentFinished;
  const limit = Math.max(2 * finished, config.blackHoleMinBadJobs);
  return bad >= limit
    ? `analysis skipped: ${bad} recent failed+closed jobs against ${finished} finished (limit ${limit})`
    : null;
}

/** In evaluation order; every one runs so the operator sees all reasons at once. */
const FILTERS: readonly (readonly [FilterName, SiteFilter])[] = [
  ["status", statusFilter],
  ["cores", coresFilter],
  ["memory", memoryFilter],
  ["disk", diskFilter],
  ["walltime", walltimeFilter],
  ["release", releaseFilter],
  ["access", accessFilter],
  ["pilots", pilotsFilter],
  ["transferring", transferringFilter],
  ["queueCap", queueCapFilter],
  ["blackHole", blackHoleFilter],
];

/** Every reason the site cannot take the job; empty when it can. */
export function exclusionsFor(job: JobNeeds, site: SiteSnapshot, ctx: FilterContext): Exclusion[] {
  const exclusions: Exclusion[] = [];
  for (const [filter, check] of FILTERS) {
    const reason = check(job, site, ctx);
    if (reason !== null) exclusions.push({ filter, reason });
  }
  return exclusions;
}

function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes >= 120 ? `${Math.round(minutes / 60)} h` : `${minutes} min`;
}
