/**
 * Keeps this node's share of the shards: renews the leases it holds, drops a
 * shard whose lease another node took, and moves toward an even share,
 * ceil(shards / live nodes), by taking free or expired leases and handing
 * over the surplus.
 */
import type { Fence, Store } from "../store/types.js";
import { shardOf } from "./actor-ref.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { Logger } from "./logger.js";

/** How a node lets go of a shard: handed over on purpose, or found taken by another node. */
export type ShardRelease = "handover" | "lost";

export interface LeaseKeeperDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  nodeId: string;
  shardCount: number;
  leaseMs: number;
  /** How often leases are renewed and membership checked; well under `leaseMs`. */
  renewEveryMs: number;
  /** The shards this node hosts now, with the fence each was taken under. */
  held(): ReadonlyMap<number, { fence: Fence }>;
  host(shard: number, fence: Fence): Promise<void>;
  drop(shard: number, release: ShardRelease): Promise<void>;
}

export class LeaseKeeper {
  private timer: TimerHandle | null = null;
  private tick: Promise<void> | null = null;
  private running = false;

  constructor(private readonly deps: LeaseKeeperDeps) {}

  /** Takes this node's share before resolving, then keeps it on a timer. */
  async start(): Promise<void> {
    this.running = true;
    await this.renew();
    this.schedule();
  }

  /** Stops renewing; a renewal under way finishes first. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.deps.clock.clearTimer(this.timer);
    await this.tick?.catch(() => {});
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimer(() => {
      this.tick = this.renew()
        .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, "lease tick failed"))
        .finally(() => {
          this.tick = null;
          this.schedule();
        });
    }, this.deps.renewEveryMs);
  }

  /** Renews what we hold, then moves toward an even share. */
  private async renew(): Promise<void> {
    const { store, clock, log, nodeId, leaseMs, shardCount } = this.deps;
    const nowMs = clock.nowMs();
    const renewals = await Promise.all(
      [...this.deps.held()].map(async ([shard, { fence }]) => ({
        shard,
        fence,
        lease: await store.renewLease(shard, fence, leaseMs, nowMs).catch(() => undefined),
      })),
    );
    for (const { shard, fence, lease } of renewals) {
      // undefined: the store did not answer; keep the shard, the fence protects us if the lease lapses meanwhile.
      if (lease === null) {
        log.warn({ shard, epoch: fence.epoch }, "lease lost");
        await this.deps.drop(shard, "lost");
      }
    }
    if (!this.running) return;
    const nodes = await store.heartbeatNode(nodeId, leaseMs, nowMs);
    const liveCount = Math.max(1, nodes.includes(nodeId) ? nodes.length : nodes.length + 1);
    const target = Math.ceil(shardCount / liveCount);
    const owned = this.deps.held().size;
    if (owned < target) await this.acquire(target - owned, nowMs);
    else if (owned > target) await this.handOver(owned - target);
  }

  /** Shards in an order that starts at a node-specific offset, so joining nodes do not all race for shard 0. */
  private shardOrder(): number[] {
    const { nodeId, shardCount } = this.deps;
    const offset = shardOf(nodeId, shardCount);
    return Array.from({ length: shardCount }, (_, i) => (i + offset) % shardCount);
  }

  private async acquire(wanted: number, nowMs: number): Promise<void> {
    const { store, nodeId, leaseMs } = this.deps;
    const held = this.deps.held();
    const candidates = this.shardOrder().filter((s) => !held.has(s));
    const leases = await Promise.all(candidates.map((s) => store.readLease(s)));
    const free = candidates.filter((_, i) => {
      const lease = leases[i];
      return !lease || lease.expiresAtMs <= nowMs || lease.owner === nodeId;
    });
    const acquired = await Promise.all(
      free.slice(0, wanted).map((s) => store.acquireLease(s, nodeId, leaseMs, nowMs)),
    );
    await Promise.all(
      acquired.map(async (lease) => {
        if (!lease || !this.running) return;
        await this.deps.host(lease.shard, { owner: lease.owner, epoch: lease.epoch });
      }),
    );
  }

  private async handOver(count: number): Promise<void> {
    const held = this.deps.held();
    const mine = this.shardOrder()
      .filter((s) => held.has(s))
      .reverse()
      .slice(0, count);
    await Promise.all(mine.map((s) => this.deps.drop(s, "handover")));
  }
}
