import type { JobNeeds, SiteSnapshot } from "../../src/brokerage/index.js";

export const NOW_MS = 1_700_000_000_000;
export const GB = 1_000_000_000;

type SiteOverrides = Omit<Partial<SiteSnapshot>, "resources" | "stats"> & {
  resources?: Partial<SiteSnapshot["resources"]>;
  stats?: Partial<SiteSnapshot["stats"]>;
};

/** A healthy online site with a live pilot and an empty queue; tests change what they look at. */
export function site(name: string, overrides: SiteOverrides = {}): SiteSnapshot {
  const { resources, stats, ...rest } = overrides;
  return {
    name,
    status: "online",
    ...rest,
    resources: {
      slots: 100,
      memoryMbPerSlot: 2000,
      diskMb: 50_000,
      maxWalltimeSec: 86_400,
      releases: ["Athena-24.0"],
      ...resources,
    },
    stats: {
      queued: 0,
      activated: 0,
      assigned: 0,
      running: 10,
      pilots: 5,
      pilotRequestRatePerMin: 2,
      transferring: 0,
      recentFinished: 50,
      recentFailed: {},
      recentClosed: 0,
      ...stats,
    },
  };
}

export function job(overrides: Partial<JobNeeds> = {}): JobNeeds {
  return {
    jobId: "job-1",
    taskId: "task-1",
    user: "alice",
    type: "production",
    priority: 1000,
    cores: 1,
    memoryMb: 1500,
    diskMb: 10_000,
    walltimeSec: 3600,
    release: "Athena-24.0",
    inputs: [],
    ...overrides,
  };
}

export function inputs(count: number, sizeBytes: number, prefix = "f"): JobNeeds["inputs"] {
  return Array.from({ length: count }, (_, i) => ({ lfn: `${prefix}${i}`, sizeBytes }));
}

/** A deterministic stream of numbers in [0, 1) (mulberry32): randomized tests that replay the same. */
export function seededStream(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
