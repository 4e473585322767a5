/**
 * Brokerage's read of every site, shared by the decisions made until it
 * expires: kept apart from the deciding, which is pure, because this is
 * where brokerage trades freshness for cost.
 */

import { refs, siteJobsCounter } from "../actors/shared/names.js";
import type { SiteContext } from "../actors/site/schema.js";
import type { SiteSnapshot } from "../brokerage/types.js";
import type { WorkloadContext } from "./context.js";
import {
  liveJobStats,
  SNAPSHOT_JOB_STATES,
  siteSnapshotChangeAtMs,
  siteSnapshotOf,
} from "./site-snapshot.js";
import { listSites, type SiteState } from "./sites.js";

/**
 * The last read of every site, per grid, for `siteStatsTtlMs`; and the
 * names of the sites it found, which a read from memory goes by.
 */
const statsCache = new WeakMap<
  WorkloadContext,
  { atMs: number; snapshots: readonly SiteSnapshot[] | null; names: readonly string[] }
>();

/** The cached read of the sites if it is younger than `siteStatsTtlMs` at `nowMs`, else null. */
export function freshSnapshots(ctx: WorkloadContext, nowMs: number): readonly SiteSnapshot[] | null {
  const ttlMs = ctx.settings.siteStatsTtlMs;
  const cached = statsCache.get(ctx);
  if (ttlMs > 0 && cached?.snapshots && nowMs >= cached.atMs && nowMs - cached.atMs < ttlMs)
    return cached.snapshots;
  return null;
}

/**
 * Drops the cached read of the sites: a site changed its status (or came to
 * be: `added`), which brokerage must not wait `siteStatsTtlMs` to see. A
 * node hears of the sites it hosts; the others' changes reach it when its
 * read expires.
 */
export function forgetSiteSnapshots(ctx: WorkloadContext, added: boolean): void {
  const cached = statsCache.get(ctx);
  if (!cached) return;
  if (added) statsCache.delete(ctx);
  else cached.snapshots = null;
}

function cache(ctx: WorkloadContext, nowMs: number, snapshots: readonly SiteSnapshot[]): void {
  if (ctx.settings.siteStatsTtlMs > 0)
    statsCache.set(ctx, { atMs: nowMs, snapshots, names: snapshots.map((s) => s.name) });
}

/** Frozen: every decision until the next read shares them (and brokerage checks the list once). */
function snapshotsOf(ctx: WorkloadContext, sites: SiteState[], nowMs: number): readonly SiteSnapshot[] {
  return Object.freeze(
    sites.map((site) => Object.freeze(siteSnapshotOf(site, ctx.connectedPilots(site.name), nowMs))),
  );
}

/** A site's snapshot as last built from memory, and all it was built from. */
interface SiteRead {
  context: SiteContext;
  /** `siteJobsCounter` of each of SNAPSHOT_JOB_STATES, and their values. */
  counterNames: readonly string[];
  counts: number[];
  pilots: number;
  /** The times between which the same inputs give the same snapshot (see `siteSnapshotChangeAtMs`). */
  fromMs: number;
  untilMs: number;
  snapshot: SiteSnapshot;
}

const siteReads = new WeakMap<WorkloadContext, Map<string, SiteRead>>();

/**
 * A site's snapshot from memory: the last one while its committed state
 * (the same object), its live-job counts, its connected pilots and its
 * windows' buckets are what it was built from, so it is the snapshot a
 * rebuild would make; else a new one. A read of every site is then the cost
 * of the sites that changed (a pilot's request changes its own site) and
 * of one look at each of the rest, where it was a rebuild of every site.
 */
function siteInMemory(
  ctx: WorkloadContext,
  reads: Map<string, SiteRead>,
  context: SiteContext,
  nowMs: number,
) {
  const counters = ctx.runtime.local;
  const pilots = ctx.connectedPilots(context.name);
  const read = reads.get(context.name);
  // The same site in the same windows: only its live counts and pilots can have moved.
  const sameSite =
    read !== undefined && read.context === context && nowMs >= read.fromMs && nowMs < read.untilMs;
  if (
    sameSite &&
    read.pilots === pilots &&
    read.counterNames.every((name, i) => counters.counter(name) === read.counts[i])
  )
    return read.snapshot;
  const counterNames =
    read?.counterNames ?? SNAPSHOT_JOB_STATES.map((state) => siteJobsCounter(context.name, state));
  const counts = counterNames.map((name) => counters.counter(name));
  const jobs: SiteState["jobs"] = {};
  SNAPSHOT_JOB_STATES.forEach((state, i) => {
    if (counts[i] !== 0) jobs[state] = counts[i];
  });
  if (sameSite) {
    const { stats } = read.snapshot;
    const snapshot = Object.freeze({ ...read.snapshot, stats: { ...stats, ...liveJobStats(jobs, pilots) } });
    reads.set(context.name, { ...read, counts, pilots, snapshot });
    return snapshot;
  }
  const snapshot = Object.freeze(siteSnapshotOf({ ...context, jobs }, pilots, nowMs));
  const untilMs = siteSnapshotChangeAtMs(context, nowMs);
  reads.set(context.name, { context, counterNames, counts, pilots, fromMs: nowMs, untilMs, snapshot });
  return snapshot;
}

/**
 * A new read of the sites from this node's memory, when it holds all of
 * them and every shard's counters (a single node does): no I/O, so an
 * inline decision may make it. Null otherwise, or before a first read from
 * the store has named the sites.
 */
export function snapshotsInMemory(ctx: WorkloadContext, nowMs: number): readonly SiteSnapshot[] | null {
  const names = statsCache.get(ctx)?.names;
  if (!names || !ctx.runtime.holdsAllCounters()) return null;
  let reads = siteReads.get(ctx);
  if (!reads) {
    reads = new Map();
    siteReads.set(ctx, reads);
  }
  const snapshots: SiteSnapshot[] = [];
  for (const name of names) {
    const state = ctx.runtime.residentState(refs.site(name));
    if (!state) return null;
    snapshots.push(siteInMemory(ctx, reads, state.context as SiteContext, nowMs));
  }
  const frozen = Object.freeze(snapshots);
  cache(ctx, nowMs, frozen);
  return frozen;
}

/**
 * What brokerage knows of every site. With `siteStatsTtlMs` > 0 a read is
 * reused for that long, as JEDI works from site statistics refreshed
 * periodically: on a grid of hundreds of sites, reading and summarising each
 * site for every job would cost more than the decision.
 */
export async function siteSnapshots(ctx: WorkloadContext, nowMs: number): Promise<readonly SiteSnapshot[]> {
  const known = freshSnapshots(ctx, nowMs) ?? snapshotsInMemory(ctx, nowMs);
  if (known) return known;
  const sites = await listSites(ctx, { liveJobsMaxAgeMs: ctx.settings.liveJobsMaxAgeMs });
  const snapshots = snapshotsOf(ctx, sites, nowMs);
  cache(ctx, nowMs, snapshots);
  return snapshots;
}

/**
 * Reads the sites for brokerage ahead of the first job (when reads are kept
 * at all), so that jobs are brokered inline from the start.
 */
export async function primeSiteSnapshots(ctx: WorkloadContext): Promise<void> {
  if (ctx.settings.siteStatsTtlMs > 0) await siteSnapshots(ctx, ctx.runtime.clock.nowMs());
}
