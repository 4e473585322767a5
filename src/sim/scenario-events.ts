/**
 * The events a scenario plays besides its workload (site outages, transfer
 * slowdowns), put on the virtual clock at their times: an outage stops the
 * site's batch partitions and sets its queues offline through their site
 * actors, as an operator would.
 */
import { refs } from "../actors/shared/names.js";
import type { Grid } from "../workload/grid.js";
import type { BatchPartition } from "./batch-system.js";
import type { ResolvedScenario } from "./scenario.js";
import type { SimTransfers } from "./sim-transfers.js";
import type { Topology } from "./topology.js";
import type { VirtualClock } from "./virtual-clock.js";

/** Site outages and transfer slowdowns, at their times. */
export function scheduleEvents(
  scenario: ResolvedScenario,
  epochMs: number,
  clock: VirtualClock,
  topology: Topology,
  partitionsBySite: Map<string, BatchPartition[]>,
  grid: Grid,
  transfers: () => SimTransfers,
  onError: (err: unknown) => void,
): void {
  for (const event of scenario.events) {
    const startMs = epochMs + event.at;
    const endMs = startMs + event.duration;
    if (event.type === "siteOutage") {
      const site = topology.sites.find((s) => s.name === event.site)!;
      const queues = site.partitions.flatMap((p) => [p.queue, p.analysisQueue]).filter((q) => q !== null);
      const setStatus = (status: "offline" | "online", reason: string) => {
        for (const queue of new Set(queues.map((q) => q.name))) {
          grid.runtime
            .send(refs.site(queue), { type: "setStatus", status, by: "sim", reason, atMs: clock.nowMs() })
            .catch(onError);
        }
      };
      clock.at(startMs, () => {
        for (const p of partitionsBySite.get(site.name)!) p.outageStarts();
        setStatus("offline", "simulated outage");
      });
      clock.at(endMs, () => {
        for (const p of partitionsBySite.get(site.name)!) p.outageEnds();
        setStatus("online", "outage over");
      });
    } else {
      let end: (() => void) | null = null;
      clock.at(startMs, () => {
        end = transfers().slowDown(event.from, event.to, event.factor);
      });
      clock.at(endMs, () => end?.());
    }
  }
}
