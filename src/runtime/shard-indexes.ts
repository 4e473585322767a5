/**
 * Brings a shard's indexes up to the kinds' current projection rules when a
 * node takes the shard (rebuilt from every actor's state when they were
 * written under other rules), then mirrors them and the counters in memory.
 */
import type { Fence, Store } from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import type { IndexMirror } from "./index-mirror.js";
import type { KindRegistry } from "./kinds.js";
import type { Logger } from "./logger.js";
import { ProjectionTotals, projectionOf } from "./projections.js";
import { restore } from "./step.js";

export interface ShardIndexDeps {
  store: Store;
  registry: KindRegistry;
  mirror: IndexMirror;
  log: Logger;
}

const SCAN_PAGE = 500;

/** Loads the shard's indexes into the mirror, unless the host stopped meanwhile. */
export async function loadShardIndexes(
  deps: ShardIndexDeps,
  shard: number,
  fence: Fence,
  stopped: () => boolean,
): Promise<void> {
  const { store, registry, mirror } = deps;
  const version = registry.projectionVersion();
  if ((await store.readIndexVersion(shard)) !== version)
    await rebuildShardIndexes(deps, shard, fence, version);
  const [indexes, counters] = await Promise.all([store.readIndexes(shard), store.readCounters(shard)]);
  if (stopped()) return;
  mirror.load(shard, indexes, counters);
}

/** Recomputes the shard's indexes and projected counters from its actors' stored states. */
async function rebuildShardIndexes(
  deps: ShardIndexDeps,
  shard: number,
  fence: Fence,
  version: number,
): Promise<void> {
  const { store, registry, log } = deps;
  const totals = new ProjectionTotals();
  const counterPrefixes = new Set<string>();
  for (const kind of registry.list()) {
    for (const prefix of registry.get(kind).projections?.counterPrefixes ?? []) counterPrefixes.add(prefix);
  }
  let cursor = "0";
  let actors = 0;
  do {
    const page = await store.scanActors(shard, cursor, SCAN_PAGE);
    cursor = page.cursor;
    const projected = page.actors.filter((actor) => {
      const kind = parseActorKey(actor).kind;
      return registry.has(kind) && registry.get(kind).projections;
    });
    const stored = await store.loadActors(shard, projected);
    projected.forEach((actor, i) => {
      const record = stored[i];
      if (!record) return;
      const ref = parseActorKey(actor);
      const definition = registry.get(ref.kind);
      try {
        const live = restore(definition, actor, record.version, record.snapshot, record.constants);
        totals.add(projectionOf(definition, live.state, ref.id));
        actors++;
      } catch (err) {
        log.warn({ shard, actor, err: (err as Error).message }, "unreadable actor left out of the indexes");
      }
    });
  } while (cursor !== "0");
  await store.rebuildIndexes(shard, fence, {
    version,
    indexes: totals.indexes,
    counters: totals.counters,
    counterPrefixes: [...counterPrefixes],
  });
  log.info({ shard, version, actors }, "shard indexes rebuilt for the current projection rules");
}
