/**
 * Reads of the whole grid's indexes and counters from any node: the shards
 * this node owns from its in-memory mirror (as committed), the others from
 * the store. For readers that need the grid's view (the API, the monitor,
 * releases), not hot paths.
 */
import type { IndexEntry, Store } from "../store/types.js";
import type { IndexMirror } from "./index-mirror.js";

export interface GridReadsDeps {
  store: Store;
  local: IndexMirror;
  shardCount: number;
  owns(shard: number): boolean;
  ownedCount(): number;
}

export class GridReads {
  constructor(private readonly deps: GridReadsDeps) {}

  /** True when this node owns every shard: the mirror then holds every index and counter whole. */
  ownsAllShards(): boolean {
    return this.deps.ownedCount() === this.deps.shardCount;
  }

  /** Counters whose names start with `prefix`, summed over every shard, exact as of each shard's last commit. */
  async counters(prefix: string): Promise<Map<string, number>> {
    const local = this.localCounters(prefix);
    if (local) return local;
    const { store, shardCount } = this.deps;
    const perShard = await Promise.all(
      Array.from({ length: shardCount }, (_, shard) => store.readCounters(shard)),
    );
    const sums = new Map<string, number>();
    for (const counters of perShard) {
      for (const [name, value] of counters) {
        if (name.startsWith(prefix)) sums.set(name, (sums.get(name) ?? 0) + value);
      }
    }
    for (const [name, value] of sums) if (value === 0) sums.delete(name);
    return sums;
  }

  /** The same from memory: null unless this node owns every shard and has loaded each. */
  localCounters(prefix: string): Map<string, number> | null {
    return this.holdsAllCounters() ? this.deps.local.counters(prefix) : null;
  }

  /** True when this node owns every shard and has loaded each: the mirror's counters are the grid's. */
  holdsAllCounters(): boolean {
    return this.ownsAllShards() && this.deps.local.loadedShards === this.deps.shardCount;
  }

  /** An index over every shard, lowest score first, then by member. */
  async index(key: string, offset: number, limit: number): Promise<IndexEntry[]> {
    const entries = this.deps.local.range(key, 0, offset + limit);
    const read = await Promise.all(
      this.unownedShards().map((shard) => this.deps.store.readIndex(shard, key, 0, offset + limit)),
    );
    for (const page of read) entries.push(...page);
    entries.sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
    return entries.slice(offset, offset + limit);
  }

  /** Members of an index over every shard. */
  async indexSize(key: string): Promise<number> {
    const sizes = await Promise.all(
      this.unownedShards().map(
        async (shard) => (await this.deps.store.readIndex(shard, key, 0, Number.MAX_SAFE_INTEGER)).length,
      ),
    );
    return sizes.reduce((sum, n) => sum + n, this.deps.local.size(key));
  }

  /** Zero-based position of a member in an index over every shard, or null when absent. */
  async indexRank(key: string, member: string): Promise<number | null> {
    const all = await this.index(key, 0, Number.MAX_SAFE_INTEGER);
    const at = all.findIndex((e) => e.member === member);
    return at < 0 ? null : at;
  }

  private unownedShards(): number[] {
    const shards: number[] = [];
    for (let shard = 0; shard < this.deps.shardCount; shard++) if (!this.deps.owns(shard)) shards.push(shard);
    return shards;
  }
}
