/**
 * The node's Prometheus metrics (prom-client: the standard exposition format,
 * well kept). Counters and histograms move with the runtime's and the
 * dispatcher's observers; gauges that describe state (jobs per site and
 * state, pilots, outbox and timer lag) are computed when scraped, so nothing
 * is maintained on the hot path for them. One registry per node, so several
 * nodes in one process (tests) do not mix.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Grid } from "../workload/grid.js";
import { listSites } from "../workload/sites.js";
import type { Dispatcher } from "./dispatcher.js";
import { EventRate } from "./event-rate.js";

/** How far back the per-site dispatch rate looks. */
const DISPATCH_RATE_WINDOW_MS = 60_000;
/** Outbox entries read per owned shard on a scrape: the gauge saturates there rather than read a huge backlog. */
const OUTBOX_SCAN_LIMIT = 1000;

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly dispatches = new Map<string, EventRate>();
  private readonly detach: (() => void)[] = [];

  constructor(
    private readonly grid: Grid,
    private readonly dispatcher: Dispatcher,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "panda_process_" });
    const transitions = new Counter({
      name: "panda_transitions_total",
      help: "Transitions committed on this node, by actor kind (refusals not counted)",
      labelNames: ["kind"],
      registers,
    });
    const refusals = new Counter({
      name: "panda_refused_events_total",
      help: "Events refused and recorded on this node, by actor kind",
      labelNames: ["kind"],
      registers,
    });
    const commitSeconds = new Histogram({
      name: "panda_commit_duration_seconds",
      help: "Duration of one group commit (one store script call)",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    const committedRecords = new Counter({
      name: "panda_committed_records_total",
      help: "Records (events) written by group commits on this node",
      registers,
    });
    const dispatchSeconds = new Histogram({
      name: "panda_dispatch_latency_seconds",
      help: "From a thread's pick of an activated job to the push to its pilot, by site",
      labelNames: ["site"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.detach.push(
      // Counted per batch and kind, then added once per kind: the commit path pays a few map updates.
      grid.runtime.onTransitions((batch) => {
        const counts = new Map<string, { done: number; refused: number }>();
        for (const { actor, entry } of batch) {
          const kind = actor.slice(0, actor.indexOf("/"));
          let count = counts.get(kind);
          if (!count) {
            count = { done: 0, refused: 0 };
            counts.set(kind, count);
          }
          if (entry.refused) count.refused++;
          else count.done++;
        }
        for (const [kind, count] of counts) {
          if (count.done > 0) transitions.inc({ kind }, count.done);
          if (count.refused > 0) refusals.inc({ kind }, count.refused);
        }
      }),
      grid.runtime.onCommit((_shard, records, durationMs) => {
        commitSeconds.observe(durationMs / 1000);
        committedRecords.inc(records);
      }),
      dispatcher.onDispatch((site, ms) => {
        dispatchSeconds.observe({ site }, ms / 1000);
        this.rateOf(site).note(grid.runtime.clock.nowMs());
      }),
    );
    this.scrapedGauges(registers);
  }

  /** Pushes to a site's pilots per minute over the last minute, on this node. */
  dispatchRatePerMin(site: string): number {
    return this.rateOf(site).perMinute(this.grid.runtime.clock.nowMs());
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const off of this.detach.splice(0)) off();
  }

  private rateOf(site: string): EventRate {
    let rate = this.dispatches.get(site);
    if (!rate) {
      rate = new EventRate(DISPATCH_RATE_WINDOW_MS);
      this.dispatches.set(site, rate);
    }
    return rate;
  }

  private scrapedGauges(registers: Registry[]): void {
    const { grid, dispatcher } = this;
    new Gauge({
      name: "panda_jobs",
      help: "Live jobs per site and state, from the site actors",
      labelNames: ["site", "state"],
      registers,
      async collect() {
        this.reset();
        for (const site of await listSites(grid.ctx)) {
          for (const [state, count] of Object.entries(site.jobs))
            this.set({ site: site.name, state }, count ?? 0);
        }
      },
    });
    new Gauge({
      name: "panda_site_jobs_ended",
      help: "Jobs that ended at each site, by outcome (a gauge: read from the site actors' totals)",
      labelNames: ["site", "outcome"],
      registers,
      async collect() {
        this.reset();
        for (const site of await listSites(grid.ctx)) {
          for (const [outcome, count] of Object.entries(site.totals))
            this.set({ site: site.name, outcome }, count);
        }
      },
    });
    new Gauge({
      name: "panda_connected_pilots",
      help: "Pilot sessions connected to this node, by site",
      labelNames: ["site"],
      registers,
      collect() {
        this.reset();
        const bySite = new Map<string, number>();
        for (const pilot of dispatcher.connectedPilots())
          bySite.set(pilot.site, (bySite.get(pilot.site) ?? 0) + 1);
        for (const [site, count] of bySite) this.set({ site }, count);
      },
    });
    new Gauge({
      name: "panda_outbox_pending_effects",
      help: `Committed effects not yet acknowledged in the shards this node owns (at most ${OUTBOX_SCAN_LIMIT} counted per shard)`,
      registers,
      async collect() {
        const counts = await Promise.all(
          grid.runtime
            .ownedShards()
            .map(async (shard) => (await grid.runtime.store.readOutbox(shard, OUTBOX_SCAN_LIMIT)).length),
        );
        this.set(counts.reduce((a, b) => a + b, 0));
      },
    });
    new Gauge({
      name: "panda_timer_lag_seconds",
      help: "How overdue the most overdue durable timer of this node's shards is (0 when none is due)",
      registers,
      async collect() {
        const nowMs = grid.runtime.clock.nowMs();
        const due = await Promise.all(
          grid.runtime.ownedShards().map((shard) => grid.runtime.store.dueTimers(shard, nowMs, 1)),
        );
        const oldest = Math.min(nowMs, ...due.flat().map((t) => t.dueAtMs));
        this.set((nowMs - oldest) / 1000);
      },
    });
    new Gauge({
      name: "panda_owned_shards",
      help: "Shards this node holds leases for",
      registers,
      collect() {
        this.set(grid.runtime.stats().ownedShards);
      },
    });
    new Gauge({
      name: "panda_resident_actors",
      help: "Actors loaded in memory on this node",
      registers,
      collect() {
        this.set(grid.runtime.stats().residentActors);
      },
    });
  }
}
