/**
 * A node's in-memory copy of the indexes and counters of the shards it owns:
 * loaded from the store when it takes a shard, changed by each of its own
 * commits as they land, dropped with the shard. Only the owner commits to a
 * shard, so for those shards this is the committed truth without a read.
 */
import type { CounterDelta, IndexEntry, IndexOp } from "../store/types.js";

interface Member {
  member: string;
  score: number;
  shard: number;
}

function before(a: Member, b: { score: number; member: string }): boolean {
  return a.score < b.score || (a.score === b.score && a.member < b.member);
}

/** One index across the owned shards, kept in (score, member) order. */
class SortedMembers {
  private ordered: Member[] = [];
  private readonly byMember = new Map<string, Member>();

  get size(): number {
    return this.ordered.length;
  }

  get(member: string): Member | undefined {
    return this.byMember.get(member);
  }

  set(member: string, score: number, shard: number): void {
    const old = this.byMember.get(member);
    if (old) {
      if (old.score === score && old.shard === shard) return;
      this.delete(member);
    }
    const entry = { member, score, shard };
    this.ordered.splice(this.position(entry), 0, entry);
    this.byMember.set(member, entry);
  }

  /**
   * Many members of one shard at once (a shard's load): sorted and merged
   * in one pass. A splice per member was quadratic in the index's size.
   */
  setMany(entries: readonly IndexEntry[], shard: number): void {
    let added: Member[] = [];
    let replaced = false;
    for (const { member, score } of entries) {
      const old = this.byMember.get(member);
      if (old) {
        if (old.score === score && old.shard === shard) continue;
        replaced = true;
      }
      const entry = { member, score, shard };
      this.byMember.set(member, entry);
      added.push(entry);
    }
    if (added.length === 0) return;
    // Entries replaced above (or twice in `entries`) are no longer the ones `byMember` names.
    const named = (e: Member) => this.byMember.get(e.member) === e;
    const current = replaced ? this.ordered.filter(named) : this.ordered;
    if (replaced) added = added.filter(named);
    added.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const merged: Member[] = new Array(current.length + added.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < current.length && j < added.length)
      merged[k++] = before(added[j]!, current[i]!) ? added[j++]! : current[i++]!;
    while (i < current.length) merged[k++] = current[i++]!;
    while (j < added.length) merged[k++] = added[j++]!;
    this.ordered = merged;
  }

  delete(member: string): boolean {
    const old = this.byMember.get(member);
    if (!old) return false;
    this.byMember.delete(member);
    const at = this.position(old);
    this.ordered.splice(at, 1);
    return true;
  }

  /** The first `count` members in order, from `offset`. */
  slice(offset: number, count: number): readonly Member[] {
    return this.ordered.slice(offset, offset + count);
  }

  /**
   * Members in order, as long as `visit` returns true; a number it returns
   * skips ahead to the first member whose score is not below it.
   */
  scan(visit: (entry: Member) => boolean | number): void {
    let at = 0;
    while (at < this.ordered.length) {
      const next = visit(this.ordered[at]!);
      if (next === false) return;
      if (next === true) at++;
      else at = Math.max(at + 1, this.position({ score: next, member: "" }));
    }
  }

  rank(member: string): number | null {
    const entry = this.byMember.get(member);
    return entry ? this.position(entry) : null;
  }

  /** One pass, compacting in place: a splice per member was quadratic in the index's size. */
  dropShards(shards: ReadonlySet<number>): void {
    let kept = 0;
    for (const entry of this.ordered) {
      if (shards.has(entry.shard)) this.byMember.delete(entry.member);
      else this.ordered[kept++] = entry;
    }
    this.ordered.length = kept;
  }

  /** Where `entry` is, or would go: the first position not before it. */
  private position(entry: { score: number; member: string }): number {
    let low = 0;
    let high = this.ordered.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (before(this.ordered[mid]!, entry)) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

export type IndexListener = (key: string, member: string, score: number | null) => void;

export class IndexMirror {
  private readonly indexes = new Map<string, SortedMembers>();
  private readonly countersByShard = new Map<number, Map<string, number>>();
  private readonly counterTotals = new Map<string, number>();
  private readonly listeners = new Set<IndexListener>();
  /**
   * Shards dropped whose members are still in the indexes: taken out in one
   * pass over every index at the next read or write, however many were
   * dropped before it. A node that stops drops all its shards at once, and a
   * pass per shard cost the shards times the indexes' size.
   */
  private readonly droppedShards = new Set<number>();

  /** Shards whose indexes and counters are loaded. */
  get loadedShards(): number {
    return this.countersByShard.size;
  }

  /** Takes a shard's indexes and counters as the store holds them. */
  load(shard: number, indexes: Map<string, IndexEntry[]>, counters: Map<string, number>): void {
    this.drop(shard);
    this.removeDropped();
    for (const [key, entries] of indexes) {
      const members = this.index(key);
      members.setMany(entries, shard);
      for (const { member, score } of entries) this.notify(key, member, score);
    }
    const own = new Map<string, number>();
    for (const [name, value] of counters) {
      own.set(name, value);
      this.counterTotals.set(name, (this.counterTotals.get(name) ?? 0) + value);
    }
    this.countersByShard.set(shard, own);
  }

  /** Forgets a shard this node no longer owns. */
  drop(shard: number): void {
    if (this.indexes.size > 0) this.droppedShards.add(shard);
    const own = this.countersByShard.get(shard);
    if (!own) return;
    for (const [name, value] of own) this.addTotal(name, -value);
    this.countersByShard.delete(shard);
  }

  /** What one committed record changed in its shard. */
  apply(shard: number, ops: readonly IndexOp[], counters: readonly CounterDelta[]): void {
    if (ops.length > 0) this.removeDropped();
    for (const { key, member, score } of ops) {
      if (score === null) {
        const members = this.indexes.get(key);
        if (!members?.delete(member)) continue;
        if (members.size === 0) this.indexes.delete(key);
      } else {
        this.index(key).set(member, score, shard);
      }
      this.notify(key, member, score);
    }
    if (counters.length === 0) return;
    let own = this.countersByShard.get(shard);
    if (!own) {
      own = new Map();
      this.countersByShard.set(shard, own);
    }
    for (const { name, delta } of counters) {
      const value = (own.get(name) ?? 0) + delta;
      if (value === 0) own.delete(name);
      else own.set(name, value);
      this.addTotal(name, delta);
    }
  }

  /** Hears every change of a mirrored index (loads and commits); returns the unsubscribe. */
  onChange(listener: IndexListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The names of the mirrored indexes that hold a member and start with `prefix`. */
  keys(prefix = ""): string[] {
    this.removeDropped();
    const found: string[] = [];
    for (const key of this.indexes.keys()) if (key.startsWith(prefix)) found.push(key);
    return found;
  }

  size(key: string): number {
    return this.members(key)?.size ?? 0;
  }

  score(key: string, member: string): number | null {
    return this.members(key)?.get(member)?.score ?? null;
  }

  /** Zero-based position by score, or null when absent. */
  rank(key: string, member: string): number | null {
    return this.members(key)?.rank(member) ?? null;
  }

  /** Members in order, `count` from `offset`. */
  range(key: string, offset: number, count: number): IndexEntry[] {
    const members = this.members(key);
    if (!members) return [];
    return members.slice(offset, count).map(({ member, score }) => ({ member, score }));
  }

  /**
   * Members in order while `visit` returns true: the head of a queue without
   * copying it. A number returned skips to the first member scored at least
   * that, so a scan of a queue ordered by several keys visits only the head
   * of each part.
   */
  scan(key: string, visit: (member: string, score: number) => boolean | number): void {
    this.members(key)?.scan((entry) => visit(entry.member, entry.score));
  }

  /** A counter summed over the owned shards. */
  counter(name: string): number {
    return this.counterTotals.get(name) ?? 0;
  }

  /** Every counter whose name starts with `prefix`, summed over the owned shards (zeros left out). */
  counters(prefix = ""): Map<string, number> {
    const found = new Map<string, number>();
    for (const [name, value] of this.counterTotals)
      if (value !== 0 && name.startsWith(prefix)) found.set(name, value);
    return found;
  }

  /** An index as committed: without the members of shards dropped since the last read. */
  private members(key: string): SortedMembers | undefined {
    this.removeDropped();
    return this.indexes.get(key);
  }

  private removeDropped(): void {
    if (this.droppedShards.size === 0) return;
    for (const [key, members] of this.indexes) {
      members.dropShards(this.droppedShards);
      if (members.size === 0) this.indexes.delete(key);
    }
    this.droppedShards.clear();
  }

  private index(key: string): SortedMembers {
    let members = this.indexes.get(key);
    if (!members) {
      members = new SortedMembers();
      this.indexes.set(key, members);
    }
    return members;
  }

  private addTotal(name: string, delta: number): void {
    const value = (this.counterTotals.get(name) ?? 0) + delta;
    if (value === 0) this.counterTotals.delete(name);
    else this.counterTotals.set(name, value);
  }

  private notify(key: string, member: string, score: number | null): void {
    for (const listener of this.listeners) listener(key, member, score);
  }
}
