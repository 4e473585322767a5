/**
 * What the dispatcher must know of a site before it hands out the site's
 * work: whether it takes work at all (not `offline`), whether it takes only
 * test jobs (`test`), and when an operator last drained its pilots. Kept in
 * memory per node: a commit of the site on this node updates it at once, a
 * site another node hosts is read again once the copy is older than
 * `maxAgeMs`.
 */
import type { SiteContext, SiteStatus } from "../actors/site/schema.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";

export interface SiteGateView {
  status: SiteStatus;
  /** When the last drain was asked for, or null. */
  drainAtMs: number | null;
  drainReason: string;
}

/** A site nobody created has no say: its queues are empty anyway. */
const UNKNOWN_SITE: SiteGateView = { status: "online", drainAtMs: null, drainReason: "" };

function viewOf(site: SiteContext): SiteGateView {
  return {
    status: site.status,
    drainAtMs: site.drain?.atMs ?? null,
    drainReason: site.drain ? `${site.drain.by}: ${site.drain.reason}` : "",
  };
}

/** Whether a job may be handed to a pilot of a site in `status`. */
export function siteTakes(status: SiteStatus, job: { test?: boolean }): boolean {
  if (status === "offline") return false;
  if (status === "test") return job.test === true;
  return true;
}

export class SiteGate {
  private readonly known = new Map<string, { view: SiteGateView; readAtMs: number }>();

  constructor(
    private readonly grid: Grid,
    private readonly maxAgeMs: number,
  ) {
    grid.runtime.onTransitions((transitions) => {
      for (const t of transitions) {
        if (t.actor.startsWith("site/") && t.state)
          this.remember(t.actor.slice("site/".length), viewOf(t.state.context as SiteContext));
      }
    });
  }

  /** The copy in memory, however old (null when never read): for decisions that cannot wait for a read. */
  cached(site: string): SiteGateView | null {
    return this.known.get(site)?.view ?? null;
  }

  /** The site as of at most `maxAgeMs` ago. */
  async fresh(site: string): Promise<SiteGateView> {
    const known = this.known.get(site);
    if (known && this.grid.runtime.clock.nowMs() - known.readAtMs < this.maxAgeMs) return known.view;
    const read = await readContext(this.grid.ctx, "site", site, { resident: true });
    const view = read ? viewOf(read.context) : UNKNOWN_SITE;
    this.remember(site, view);
    return view;
  }

  private remember(site: string, view: SiteGateView): void {
    this.known.set(site, { view, readAtMs: this.grid.runtime.clock.nowMs() });
  }
}
