/**
 * Brokerage's read of every site, shared by the decisions made until it
 * expires: kept apart from the deciding, which is pure, because this is
 * where brokerage trades freshness for cost.
 */
import type { SiteSnapshot } from "../brokerage/types.js";
import type { WorkloadContext } from "./context.js";
import { siteSnapshotOf } from "./site-snapshot.js";
import { listSites, type SiteState, sitesInMemory } from "./sites.js";

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

/**
 * A new read of the sites from this node's memory, when it holds all of
 * them and every shard's counters (a single node does): no I/O, so an
 * inline decision may make it. Null otherwise, or before a first read from
 * the store has named the sites.
 */
export function snapshotsInMemory(ctx: WorkloadContext, nowMs: number): readonly SiteSnapshot[] | null {
  const names = statsCache.get(ctx)?.names;
  if (!names) return null;
  const sites = sitesInMemory(ctx, names);
  if (!sites) return null;
  const snapshots = snapshotsOf(ctx, sites, nowMs);
  cache(ctx, nowMs, snapshots);
  return snapshots;
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
