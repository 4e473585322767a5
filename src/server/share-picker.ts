/** Which of a site's share queues a free pilot thread looks in first: O(shares) per pick, from committed counters. */
import { queuedSecOf, shareRunningFrom } from "../actors/job/projections.js";
import { type ShareStanding, shareOrder } from "../brokerage/shares.js";
import type { Runtime } from "../runtime/runtime.js";
import { queueNames } from "../store/queue-index.js";
import type { WorkloadSettings } from "../workload/context.js";

type Lane = "production" | "analysis";

/**
 * The most under-served share first (its running slots at the site over its
 * target), every `ageOnlyEvery`th pick the share whose best job waited
 * longest. Running slots are the shares' committed counters (the job kind's
 * projections) plus the binds this node has under way, so threads filled in
 * one turn do not all go to the same share before the counts move.
 */
export class SharePicker {
  /** Picks made per site: every `ageOnlyEvery`th goes by age. */
  private readonly picks = new Map<string, number>();
  /** Binds under way per site and share, not yet in the committed counters. */
  private readonly binding = new Map<string, number>();
  /** Another node's shards' counters, read at most every `countsMaxAgeMs` (only when this node does not own every shard). */
  private remoteCounts: Map<string, number> = new Map();
  private remoteReadAtMs = Number.NEGATIVE_INFINITY;
  private reading = false;
  private readonly targets: ReadonlyMap<string, number>;

  constructor(
    private readonly runtime: Runtime,
    private readonly settings: WorkloadSettings,
    private readonly countsMaxAgeMs: number,
  ) {
    this.targets = new Map(settings.shares.map((s) => [s.name, s.percent / 100]));
  }

  /** The shares to look in at `site`, in order, for a thread that takes `lanes`. */
  order(site: string, lanes: readonly Lane[]): string[] {
    const shares = this.settings.queueShares;
    if (shares.length === 1) return [shares[0]!];
    const pick = (this.picks.get(site) ?? 0) + 1;
    this.picks.set(site, pick);
    const every = this.settings.fairShare.ageOnlyEvery;
    const byAge = every > 0 && pick % every === 0;
    const standings: ShareStanding[] = shares.map((name) => ({
      name,
      target: this.targets.get(name) ?? 0,
      running: this.running(site, name),
      headSinceSec: byAge ? this.headSinceSec(site, name, lanes) : null,
    }));
    return shareOrder(standings, byAge).map((s) => s.name);
  }

  /** A bind of a job of `share` at `site` begins; call the answer when it is over (committed or not). */
  begin(site: string, share: string): () => void {
    const key = `${site}\u0000${share}`;
    this.binding.set(key, (this.binding.get(key) ?? 0) + 1);
    return () => {
      const left = (this.binding.get(key) ?? 1) - 1;
      if (left > 0) this.binding.set(key, left);
      else this.binding.delete(key);
    };
  }

  private running(site: string, share: string): number {
    const counter = this.runtime.ownsAllShards()
      ? (name: string) => this.runtime.local.counter(name)
      : (name: string) => this.gridCounters().get(name) ?? 0;
    const committed = shareRunningFrom(counter, site, share, this.settings.queueShares);
    return committed + (this.binding.get(`${site}\u0000${share}`) ?? 0);
  }

  /** The grid's counters as last read; a stale read starts a new one and is used meanwhile. */
  private gridCounters(): Map<string, number> {
    const nowMs = this.runtime.clock.nowMs();
    if (!this.reading && nowMs - this.remoteReadAtMs > this.countsMaxAgeMs) {
      this.reading = true;
      void this.runtime
        // Every counter: the default share is counted from the site's on-pilot jobs (`shareRunningFrom`).
        .readCounters("")
        .then((counts) => {
          this.remoteCounts = counts;
          this.remoteReadAtMs = this.runtime.clock.nowMs();
        })
        .catch(() => {})
        .finally(() => {
          this.reading = false;
        });
    }
    return this.remoteCounts;
  }

  /** When the best job of the share this node holds at the site was activated: the head of each lane, no scan. */
  private headSinceSec(site: string, share: string, lanes: readonly Lane[]): number | null {
    let oldest: number | null = null;
    for (const lane of lanes) {
      this.runtime.local.scan(queueNames.siteQueue(site, lane, share), (_member, score) => {
        const sinceSec = queuedSecOf(score);
        if (oldest === null || sinceSec < oldest) oldest = sinceSec;
        return false;
      });
    }
    return oldest;
  }
}
