/** A grid small enough to run end to end in a test, with every kind of work and failure turned on. */
export function smallScenario(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "small",
    question: "Does a small grid run end to end with its invariants intact?",
    duration: "3h",
    sampleEvery: "30m",
    shards: 4,
    sites: [
      {
        name: "A",
        slots: 12,
        failures: { payload: 0.03, pilot: 0.03, lostHeartbeat: 0.03, stagein: 0.03, stageout: 0.03 },
        pilots: { rate: "60/h", lifetime: "3h", heartbeatInterval: "10m" },
      },
      {
        name: "B",
        slots: 8,
        bandwidth: "100MB/s",
        failures: { payload: 0.03, lostHeartbeat: 0.03 },
        pilots: { rate: "40/h", lifetime: "3h", heartbeatInterval: "10m" },
      },
    ],
    production: {
      kinds: [
        {
          name: "simul",
          tasks: 40,
          jobsPerTask: 6,
          duration: { dist: "lognormal", median: "25m", sigma: 0.5 },
          walltime: "4h",
          inputs: { fileSize: "500MB", at: ["A"] },
          outputs: { fileSize: "50MB", destination: "A" },
        },
      ],
    },
    analysis: {
      jobsPerTask: 4,
      duration: { dist: "exponential", mean: "8m", max: "50m" },
      arrival: { rate: "8/h" },
      bursts: [{ at: "1h", tasks: 5, over: "10m", shape: "decay" }],
    },
    events: [
      { type: "siteOutage", at: "2h", site: "B", duration: "20m" },
      { type: "transferSlowdown", at: "30m", duration: "1h", to: "B", factor: 0.5 },
    ],
    watchdogs: { heartbeatTimeout: "30m", sentTimeout: "15m" },
    variants: [
      { name: "single", strategy: { pilots: "single" } },
      { name: "multitask", strategy: { pilots: "multitask", multitask: { slowdown: 1.2 } } },
    ],
    ...overrides,
  };
}
