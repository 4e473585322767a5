/** Recent samples of the node's throughput and queue depths, in a ring buffer, for the dashboard's charts. */
import type { CommittedTransition } from "../runtime/shard-host.js";
import type { Sample, SiteView } from "./shapes.js";

export interface SamplerOptions {
  everyMs: number;
  /** Samples kept: `capacity * everyMs` is how far back the charts reach. */
  capacity: number;
}

/** Three hours at ten-second resolution: "the last hours" without unbounded memory. */
export const DEFAULT_SAMPLER_OPTIONS: SamplerOptions = { everyMs: 10_000, capacity: 1080 };

function topState(state: string | null): string {
  return state === null ? "" : state.split(".")[0]!;
}

/**
 * A ring buffer of recent samples for the throughput and queue-depth charts.
 * Throughput is counted from transitions committed on this node; queue depths
 * and pilot requests are read from the sites at each tick.
 */
export class Sampler {
  private readonly samples: Sample[] = [];
  private finished = 0;
  private failed = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private ticking = false;

  constructor(
    subscribe: (listener: (transitions: CommittedTransition[]) => void) => () => void,
    private readonly readSites: () => Promise<SiteView[]>,
    private readonly nowMs: () => number,
    readonly options: SamplerOptions = DEFAULT_SAMPLER_OPTIONS,
  ) {
    this.unsubscribe = subscribe((transitions) => this.count(transitions));
    this.timer = setInterval(() => void this.tick(), options.everyMs);
    this.timer.unref();
  }

  /** Samples taken after `sinceMs`, oldest first. */
  since(sinceMs = 0): Sample[] {
    return this.samples.filter((s) => s.atMs > sinceMs);
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }

  /** Takes one sample now; the timer calls it, tests may too. */
  async tick(): Promise<void> {
    // A slow store must not stack reads up: skip a tick rather than queue it.
    if (this.ticking) return;
    this.ticking = true;
    try {
      const sites: Sample["sites"] = {};
      for (const site of await this.readSites()) {
        const n = (state: keyof SiteView["jobs"]) => site.jobs[state] ?? 0;
        sites[site.name] = {
          queued: site.queueDepth.production + site.queueDepth.analysis,
          running: n("running") + n("starting") + n("sent"),
          pilotRequests: site.pilotRequests.inWindow,
        };
      }
      this.samples.push({ atMs: this.nowMs(), finished: this.finished, failed: this.failed, sites });
      this.finished = 0;
      this.failed = 0;
      if (this.samples.length > this.options.capacity)
        this.samples.splice(0, this.samples.length - this.options.capacity);
    } catch {
      // A failed read loses one point of a chart; the next tick tries again.
    } finally {
      this.ticking = false;
    }
  }

  private count(transitions: CommittedTransition[]): void {
    for (const t of transitions) {
      if (!t.actor.startsWith("job/") || t.entry.refused) continue;
      const to = topState(t.entry.to);
      if (to === topState(t.entry.from)) continue;
      if (to === "finished") this.finished++;
      else if (to === "failed") this.failed++;
    }
  }
}
