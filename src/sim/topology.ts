/**
 * PanDA serves a physical site through one or more queues (PanDA sites):
 * `BNL` for production, `ANALY_BNL` for analysis, `BNL_SHORT` for short
 * analysis. The strategy decides which queues a site has, which share of its
 * batch slots each queue's pilots may use, and which work each queue takes.
 *
 * The production code has no queue type, so a queue's role is expressed the
 * way brokerage already filters: each job carries a release tag naming its
 * kind of work, and a queue lists the tags it serves.
 */
import type { SiteInput } from "../actors/site/schema.js";
import type { JobType } from "../brokerage/types.js";
import { expandedSiteNames, type ResolvedScenario, type ScenarioSite, type Strategy } from "./scenario.js";

/** The release tag every job of a type carries. */
export const RELEASE_OF: Record<JobType, string> = { production: "production", analysis: "analysis" };

export interface PandaQueue {
  name: string;
  physicalSite: string;
  /** The kinds of work brokerage may send here. */
  serves: JobType[];
  maxWalltimeMs: number;
  multitask: boolean;
}

/** One batch partition of a physical site: its slots, and which queue each pilot it starts serves. */
export interface Partition {
  physicalSite: string;
  slots: number;
  /** Pilots submitted per hour for this partition (the site's rate, split by slots). */
  ratePerHour: number;
  /** Every `analysisEvery`-th pilot serves the analysis queue (oneInN); null: all serve `queue`. */
  analysisEvery: number | null;
  queue: PandaQueue;
  analysisQueue: PandaQueue | null;
}

export interface PhysicalSite {
  name: string;
  config: ScenarioSite;
  slots: number;
  partitions: Partition[];
}

export interface Topology {
  sites: PhysicalSite[];
  queues: PandaQueue[];
  /** Queue name -> the physical site whose slots and storage it uses. */
  physicalOf: Map<string, PhysicalSite>;
}

export function buildTopology(scenario: ResolvedScenario, strategy: Strategy): Topology {
  const sites: PhysicalSite[] = [];
  for (const config of scenario.sites) {
    for (const name of expandedSiteNames(config.name, config.count)) {
      sites.push({ name, config, slots: config.slots, partitions: partitionsOf(name, config, strategy) });
    }
  }
  const queues: PandaQueue[] = [];
  const physicalOf = new Map<string, PhysicalSite>();
  for (const site of sites) {
    for (const partition of site.partitions) {
      for (const queue of [partition.queue, partition.analysisQueue]) {
        if (!queue || physicalOf.has(queue.name)) continue;
        queues.push(queue);
        physicalOf.set(queue.name, site);
      }
    }
  }
  return { sites, queues, physicalOf };
}

function partitionsOf(name: string, config: ScenarioSite, strategy: Strategy): Partition[] {
  const maxWalltimeMs = config.maxWalltime;
  const multitask = config.pilots.multitask ?? strategy.pilots === "multitask";
  const rate = config.pilots.rate;
  switch (strategy.pilots) {
    case "single":
    case "multitask":
      return [
        {
          physicalSite: name,
          slots: config.slots,
          ratePerHour: rate,
          analysisEvery: null,
          queue: { name, physicalSite: name, serves: ["production", "analysis"], maxWalltimeMs, multitask },
          analysisQueue: null,
        },
      ];
    case "oneInN":
      return [
        {
          physicalSite: name,
          slots: config.slots,
          ratePerHour: rate,
          analysisEvery: strategy.analysisPilotEvery,
          queue: { name, physicalSite: name, serves: ["production"], maxWalltimeMs, multitask },
          analysisQueue: {
            name: `ANALY_${name}`,
            physicalSite: name,
            serves: ["analysis"],
            maxWalltimeMs,
            multitask,
          },
        },
      ];
    case "shortQueue": {
      const shortSlots = Math.max(1, Math.round(config.slots * strategy.shortQueue.slotsFraction));
      const mainSlots = Math.max(1, config.slots - shortSlots);
      return [
        {
          physicalSite: name,
          slots: mainSlots,
          ratePerHour: (rate * mainSlots) / config.slots,
          analysisEvery: null,
          queue: { name, physicalSite: name, serves: ["production", "analysis"], maxWalltimeMs, multitask },
          analysisQueue: null,
        },
        {
          physicalSite: name,
          slots: shortSlots,
          // A dedicated queue's factory keeps its slots filled at the same pace per slot.
          ratePerHour: Math.max(1, (rate * shortSlots) / config.slots),
          analysisEvery: null,
          queue: {
            name: `${name}_SHORT`,
            physicalSite: name,
            serves: ["analysis"],
            maxWalltimeMs: Math.min(maxWalltimeMs, strategy.shortQueue.maxWalltime),
            multitask,
          },
          analysisQueue: null,
        },
      ];
    }
  }
}

/** The site actor's input for a queue: what brokerage sees of it. */
export function siteActorInput(
  queue: PandaQueue,
  site: PhysicalSite,
  thresholds: SiteInput["thresholds"],
  atMs: number,
): SiteInput {
  const slots = site.partitions
    .filter((p) => p.queue.name === queue.name || p.analysisQueue?.name === queue.name)
    .reduce((sum, p) => sum + p.slots, 0);
  return {
    name: queue.name,
    resources: {
      slots,
      memoryPerSlotMb: site.config.memoryPerSlotMb,
      diskMb: site.config.scratchDiskMb,
      walltimeSec: { min: 0, max: Math.max(1, Math.floor(queue.maxWalltimeMs / 1000)) },
      releases: queue.serves.map((type) => RELEASE_OF[type]),
    },
    storageElement: site.name,
    ...(thresholds ? { thresholds } : {}),
    atMs,
  };
}
