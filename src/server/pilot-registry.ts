/**
 * Every node's pilots, for any node to answer for all: each node publishes
 * what its sessions hold (pilot, site, ready threads, draining, and its
 * dispatch rate per site) as one record in a shared index every
 * `publishEveryMs` (the node the member, its record kept beside it), and
 * reads the other nodes' records at the same time. A record older than
 * `staleAfterMs` is a node that stopped: it is left out and removed with its record. Readers get this node's pilots live and the others' as of the
 * last read (at most one interval old); nothing here is on the job path.
 */
import { z } from "zod";
import type { Clock, TimerHandle } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import { nodeQueues } from "../store/index-names.js";
import type { QueueIndex } from "../store/queue-index.js";

const QUEUE = nodeQueues.pilotRegistry;
/** Node records read at most (a grid has a handful of nodes). */
const MAX_NODES = 10_000;

export interface RegisteredPilot {
  pilotId: string;
  site: string;
  node: string;
  ready: string[];
  draining: boolean;
}

const recordSchema = z.object({
  node: z.string(),
  atMs: z.number(),
  pilots: z.array(
    z.object({ pilotId: z.string(), site: z.string(), ready: z.array(z.string()), draining: z.boolean() }),
  ),
  dispatchesPerMin: z.record(z.string(), z.number()),
});
type NodeRecord = z.infer<typeof recordSchema>;

/** What the registry reads of its own node: the dispatcher's sessions and the metrics' dispatch rates. */
export interface LocalPilots {
  pilots(): Omit<RegisteredPilot, "node">[];
  dispatchRatePerMin(site: string): number;
}

export interface PilotRegistryOptions {
  publishEveryMs: number;
  /** A node's record older than this is a node that stopped. */
  staleAfterMs: number;
}

export const DEFAULT_PILOT_REGISTRY_OPTIONS: PilotRegistryOptions = {
  publishEveryMs: 5000,
  staleAfterMs: 20_000,
};

export class PilotRegistry {
  private others: NodeRecord[] = [];
  private timer: TimerHandle | null = null;
  private closed = false;

  constructor(
    private readonly index: QueueIndex,
    private readonly node: string,
    private readonly clock: Clock,
    private readonly local: LocalPilots,
    private readonly log: Logger,
    readonly options: PilotRegistryOptions = DEFAULT_PILOT_REGISTRY_OPTIONS,
  ) {}

  start(): void {
    const tick = () => {
      if (this.closed) return;
      this.refresh()
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, "pilot registry not refreshed"),
        )
        .finally(() => {
          if (!this.closed) this.timer = this.clock.setTimer(tick, this.options.publishEveryMs);
        });
    };
    tick();
  }

  /** Publishes this node's record and reads the other nodes'. */
  async refresh(): Promise<void> {
    const nowMs = this.clock.nowMs();
    // The node is the member, its record kept beside it: a publish replaces the last one.
    await this.index.putRecord(QUEUE, this.node, nowMs, JSON.stringify(this.localRecord(nowMs)));
    const entries = await this.index.range(QUEUE, 0, MAX_NODES);
    const staleBeforeMs = nowMs - this.options.staleAfterMs;
    const others = entries.filter((e) => e.score >= staleBeforeMs && e.member !== this.node);
    const records = await this.index.readRecords(
      QUEUE,
      others.map((e) => e.member),
    );
    this.others = [];
    for (const text of records) {
      const parsed = recordSchema.safeParse(text === null ? null : safeJson(text));
      if (parsed.success) this.others.push(parsed.data);
    }
    // A node that stopped without closing: its record goes with it.
    for (const entry of entries)
      if (entry.score < staleBeforeMs) await this.index.remove(QUEUE, entry.member);
  }

  /** Every node's pilots: this node's as they are now, the others' as last read. */
  pilots(): RegisteredPilot[] {
    const own = this.local.pilots().map((p) => ({ ...p, node: this.node }));
    return [...own, ...this.others.flatMap((r) => r.pilots.map((p) => ({ ...p, node: r.node })))];
  }

  /** The nodes that answered, with the time of each one's record. */
  nodes(): { node: string; atMs: number; pilots: number }[] {
    return [
      { node: this.node, atMs: this.clock.nowMs(), pilots: this.local.pilots().length },
      ...this.others.map((r) => ({ node: r.node, atMs: r.atMs, pilots: r.pilots.length })),
    ];
  }

  /** Pushes to the site's pilots per minute, summed over the nodes. */
  dispatchRatePerMin(site: string): number {
    return this.others.reduce(
      (sum, r) => sum + (r.dispatchesPerMin[site] ?? 0),
      this.local.dispatchRatePerMin(site),
    );
  }

  /** Stops publishing and takes this node's record out, so no reader counts its pilots after it left. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimer(this.timer);
    await this.index.remove(QUEUE, this.node).catch(() => false);
  }

  private localRecord(nowMs: number): NodeRecord {
    const pilots = this.local.pilots();
    const dispatchesPerMin: Record<string, number> = {};
    for (const site of new Set(pilots.map((p) => p.site)))
      dispatchesPerMin[site] = this.local.dispatchRatePerMin(site);
    return { node: this.node, atMs: nowMs, pilots, dispatchesPerMin };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
