/**
 * One scenario file (YAML or JSON) describes a grid, its workload, the
 * strategies to compare and the events to play. Every quantity carries its
 * unit ("2h", "3GB", "1Gbps", "60/h"). `docs/simulation.md` explains each
 * field; this schema is the single definition, and its errors name the field.
 * Reading a file and resolving its variants is `scenario.ts`.
 */
import { z } from "zod";
import { siteThresholdsSchema } from "../actors/site/schema.js";
import { BrokerageConfigSchema } from "../brokerage/types.js";
import { distributionSchema } from "./distribution.js";
import { bandwidthSchema, durationSchema, ratePerHourSchema, sizeSchema } from "./units.js";

const probability = z.number().min(0).max(1);
const siteNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "site names use letters, digits, '_', '.' and '-'");
const countSchema = z.number().nonnegative();

/** Per job (per file for stage-in): the chance it fails with that error class. */
export const failuresSchema = z
  .object({
    /** The payload exits non-zero part-way through its run (not retried by default, as in PanDA). */
    payload: probability.default(0),
    /** The pilot fails to set the job up (early in its run). */
    pilot: probability.default(0),
    /** The worker node dies mid-job: heartbeats stop, the job's watchdog fails it. */
    lostHeartbeat: probability.default(0),
    /** A dispatch file transfer to this site fails for good (after the mover's own retries). */
    stagein: probability.default(0),
    /** The pilot cannot write the outputs to the site's storage at the end of the job. */
    stageout: probability.default(0),
  })
  .strict();

export const pilotDeliverySchema = z
  .object({
    /** Pilots the site's pilot factory submits to its batch system. */
    rate: ratePerHourSchema,
    /** The factory stops submitting while this many pilots wait in the batch queue for a slot. */
    maxQueued: z.number().int().nonnegative().default(20),
    /** From getting a batch slot to saying hello (batch start-up, pilot set-up). */
    startupLatency: distributionSchema(durationSchema).default({ dist: "fixed", value: 120_000 }),
    /** How long a pilot asks for new jobs; it exits when its last job ends after that. */
    lifetime: distributionSchema(durationSchema).default({ dist: "fixed", value: 86_400_000 }),
    /** A pilot with nothing to run for this long exits and gives its slot back. */
    idleTimeout: durationSchema.default(600_000),
    /** How often a pilot reports each running job's heartbeat. */
    heartbeatInterval: durationSchema.default(1_800_000),
    /** Multitasking pilots (a secondary thread for short analysis); the strategy decides when absent. */
    multitask: z.boolean().optional(),
  })
  .strict();

const linkSchema = z
  .object({ bandwidth: bandwidthSchema.optional(), latency: durationSchema.optional() })
  .strict();

export const siteSchema = z
  .object({
    name: siteNameSchema,
    /** Copies of this site, named NAME-1 .. NAME-n: how large grids are written. */
    count: z.number().int().min(1).max(10_000).default(1),
    /** Single-core batch slots, each running one pilot. */
    slots: z.number().int().min(1),
    memoryPerSlotMb: z.number().int().positive().default(2000),
    scratchDiskMb: z.number().int().positive().default(20_000),
    /** Capacity of the site's storage element; a dispatch transfer that does not fit fails (stage-in). */
    storage: sizeSchema.default(1e15),
    maxWalltime: durationSchema.default(172_800_000),
    /** Wide-area bandwidth to every other site (a link takes the smaller of its two ends). */
    bandwidth: bandwidthSchema.default(125_000_000),
    /** Per-file set-up time of a transfer to or from another site (the larger of the two ends). */
    latency: durationSchema.default(2000),
    /** Worker node <-> site storage: stage-in of inputs already here, stage-out of outputs. */
    localBandwidth: bandwidthSchema.default(200_000_000),
    /** Overrides for the links to named sites. */
    links: z.record(siteNameSchema, linkSchema).default({}),
    failures: failuresSchema.prefault({}),
    pilots: pilotDeliverySchema,
  })
  .strict();

const inputsSchema = z
  .object({
    filesPerJob: z.number().int().min(1).max(1000).default(1),
    fileSize: distributionSchema(sizeSchema),
    /** Sites where each task's input dataset is placed (one chosen per task, weighted by slots); all when absent. */
    at: z.array(siteNameSchema).min(1).optional(),
  })
  .strict();

const outputsSchema = z
  .object({
    fileSize: distributionSchema(sizeSchema),
    /** Outputs are transferred here after the job (the job waits in `transferring`); they stay put when absent. */
    destination: siteNameSchema.optional(),
  })
  .strict();

/** What every job of a kind of work needs and does. */
const jobShape = {
  /** How long the payload runs once started (capped at the walltime). */
  duration: distributionSchema(durationSchema),
  /** What the job asks of the site; brokerage and the short-queue rules read it. */
  walltime: durationSchema.default(86_400_000),
  memoryMb: z.number().int().positive().default(1500),
  priority: z.number().int().default(100),
  inputs: inputsSchema.optional(),
  outputs: outputsSchema.optional(),
};

export const productionKindSchema = z
  .object({
    name: siteNameSchema,
    /** Tasks of this kind that are available to run. */
    tasks: z.number().int().min(0),
    jobsPerTask: distributionSchema(countSchema),
    /** When several kinds have tasks ready, the next task is drawn by weight. */
    weight: z.number().positive().default(1),
    /** Tasks become available from this time on. */
    startAt: durationSchema.default(0),
    user: z.string().min(1).default("prodsys"),
    ...jobShape,
  })
  .strict();

export const productionSchema = z
  .object({
    /**
     * JEDI-like flow control: a new task is released into the grid whenever
     * fewer than this many production jobs per slot are waiting (defined to
     * activated). Production saturates the grid without flooding brokerage.
     */
    keepQueuedPerSlot: z.number().positive().default(1.5),
    checkEvery: durationSchema.default(60_000),
    kinds: z.array(productionKindSchema).min(1),
  })
  .strict();

export const burstSchema = z
  .object({
    at: durationSchema,
    /** Repeats every so often after `at`; once when absent. */
    every: durationSchema.optional(),
    /** Analysis tasks in one burst. */
    tasks: z.number().int().min(1),
    /** How long the burst's submissions are spread over. */
    over: durationSchema.default(600_000),
    /** uniform: evenly; ramp: rising to the end; decay: most at the start; spike: all at once. */
    shape: z.enum(["uniform", "ramp", "decay", "spike"]).default("uniform"),
  })
  .strict();

export const analysisSchema = z
  .object({
    users: z.number().int().min(1).default(50),
    /** Zipf exponent of how tasks fall on users: 0 is even, 1 is a few heavy users. */
    userSkew: z.number().nonnegative().default(1),
    jobsPerTask: distributionSchema(countSchema),
    /** Poisson background of task submissions. */
    arrival: z
      .object({
        rate: ratePerHourSchema,
        from: durationSchema.default(0),
        until: durationSchema.optional(),
      })
      .strict()
      .optional(),
    bursts: z.array(burstSchema).default([]),
    ...jobShape,
    walltime: durationSchema.default(3_600_000),
    priority: z.number().int().default(1000),
  })
  .strict();

export const pilotModeSchema = z.enum(["single", "oneInN", "shortQueue", "multitask"]);
export type PilotMode = z.infer<typeof pilotModeSchema>;

export const strategySchema = z
  .object({
    /**
     * single: one thread per pilot, analysis queued behind production;
     * oneInN: one pilot in N serves a separate analysis queue (ANALY_<site>);
     * shortQueue: a slice of each site's slots runs a dedicated short analysis queue (<site>_SHORT);
     * multitask: every pilot has a secondary thread for short analysis jobs.
     */
    pilots: pilotModeSchema.default("single"),
    analysisPilotEvery: z.number().int().min(2).default(10),
    shortQueue: z
      .object({
        slotsFraction: z.number().gt(0).lt(1).default(0.1),
        maxWalltime: durationSchema.default(3_600_000),
      })
      .strict()
      .prefault({}),
    multitask: z
      .object({
        /** Secondary threads take only analysis jobs at most this long (the dispatcher's rule). */
        shortAnalysisWalltime: durationSchema.default(3_600_000),
        /** While both threads run, each job's work advances at 1/slowdown of its own pace (1: no contention). */
        slowdown: z.number().min(1).default(1),
      })
      .strict()
      .prefault({}),
    brokerage: BrokerageConfigSchema.partial().default({}),
    /** The per-user quota of active jobs (activated to running): the grid's share control. */
    maxActiveJobsPerUser: z.number().int().positive().default(10_000),
  })
  .strict();
export type Strategy = z.output<typeof strategySchema>;

export const variantSchema = z
  .object({
    name: siteNameSchema,
    description: z.string().default(""),
    /** Overrides of the scenario's strategy for this variant. */
    strategy: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const simEventSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("siteOutage"),
      at: durationSchema,
      site: siteNameSchema,
      duration: durationSchema,
    })
    .strict(),
  z
    .object({
      type: z.literal("transferSlowdown"),
      at: durationSchema,
      duration: durationSchema,
      /** A site name or "*". */
      from: z.string().default("*"),
      to: z.string().default("*"),
      /** Bandwidth is multiplied by this while it lasts. */
      factor: z.number().gt(0).max(1),
    })
    .strict(),
]);
export type SimEvent = z.output<typeof simEventSchema>;

export const scenarioSchema = z
  .object({
    name: siteNameSchema,
    /** The question the scenario answers, one line. */
    question: z.string().min(1),
    seed: z.number().int().nonnegative().default(1),
    /** Simulated time to run (`--until` overrides). */
    duration: durationSchema.default(86_400_000),
    /** Time series resolution. */
    sampleEvery: durationSchema.default(900_000),
    /** Events fall on this grid of simulated time; what falls in one tick is committed together. */
    timeResolution: durationSchema.default(1000),
    /** Runtime shards; the simulation runs one node that owns them all. */
    shards: z.number().int().min(1).max(4096).default(16),
    sites: z.array(siteSchema).min(1),
    network: z
      .object({
        /** Files moving at once on one link; more wait their turn. Active files share the link's bandwidth. */
        streamsPerLink: z.number().int().min(1).default(10),
      })
      .strict()
      .prefault({}),
    production: productionSchema.optional(),
    analysis: analysisSchema.optional(),
    strategy: strategySchema.prefault({}),
    variants: z.array(variantSchema).default([]),
    events: z.array(simEventSchema).default([]),
    /**
     * The site actors' own thresholds (black-hole detection, how many recent
     * outcomes they keep), as in production; every queue gets them.
     */
    siteThresholds: siteThresholdsSchema.partial().strict().optional(),
    /** How long brokerage reuses its read of the sites' statistics (JEDI refreshes them periodically). */
    brokerageStatsRefresh: durationSchema.default(10_000),
    /** The jobs' watchdogs: PanDA's heartbeat and queue timeouts, which the pilots' heartbeats must respect. */
    watchdogs: z
      .object({
        heartbeatTimeout: durationSchema.default(7_200_000),
        sentTimeout: durationSchema.default(1_800_000),
        assignedTimeout: durationSchema.default(14_400_000),
        holdingTimeout: durationSchema.default(10_800_000),
        rebroker: durationSchema.default(300_000),
        maxBrokerageTries: z.number().int().positive().default(100),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((scenario, ctx) => {
    const names = new Set<string>();
    scenario.sites.forEach((site, i) => {
      for (const name of expandedSiteNames(site.name, site.count)) {
        if (names.has(name))
          ctx.addIssue({ code: "custom", path: ["sites", i, "name"], message: `duplicate site ${name}` });
        names.add(name);
      }
    });
    const known = (name: string) => names.has(name);
    scenario.sites.forEach((site, i) => {
      for (const other of Object.keys(site.links)) {
        if (!known(other))
          ctx.addIssue({
            code: "custom",
            path: ["sites", i, "links", other],
            message: `unknown site ${other}`,
          });
      }
      if (site.pilots.heartbeatInterval >= scenario.watchdogs.heartbeatTimeout) {
        ctx.addIssue({
          code: "custom",
          path: ["sites", i, "pilots", "heartbeatInterval"],
          message: "must be shorter than watchdogs.heartbeatTimeout, or every long job is lost",
        });
      }
    });
    const kinds = [
      ...(scenario.production?.kinds ?? []).map((kind, i) => ({ kind, path: ["production", "kinds", i] })),
      ...(scenario.analysis ? [{ kind: scenario.analysis, path: ["analysis"] }] : []),
    ];
    for (const { kind, path } of kinds) {
      for (const [j, site] of (kind.inputs?.at ?? []).entries()) {
        if (!known(site))
          ctx.addIssue({
            code: "custom",
            path: [...path, "inputs", "at", j],
            message: `unknown site ${site}`,
          });
      }
      const destination = kind.outputs?.destination;
      if (destination && !known(destination))
        ctx.addIssue({
          code: "custom",
          path: [...path, "outputs", "destination"],
          message: `unknown site ${destination}`,
        });
    }
    scenario.events.forEach((event, i) => {
      const sites =
        event.type === "siteOutage"
          ? [["site", event.site]]
          : [
              ["from", event.from],
              ["to", event.to],
            ];
      for (const [field, site] of sites) {
        if (site !== "*" && !known(site!))
          ctx.addIssue({ code: "custom", path: ["events", i, field!], message: `unknown site ${site}` });
      }
    });
    const variantNames = new Set<string>();
    scenario.variants.forEach((variant, i) => {
      if (variantNames.has(variant.name))
        ctx.addIssue({
          code: "custom",
          path: ["variants", i, "name"],
          message: `duplicate variant ${variant.name}`,
        });
      variantNames.add(variant.name);
    });
    if (!scenario.production && !scenario.analysis)
      ctx.addIssue({
        code: "custom",
        path: ["production"],
        message: "a scenario needs production or analysis work",
      });
  });
export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioSite = Scenario["sites"][number];
export type ProductionKind = z.output<typeof productionKindSchema>;
export type AnalysisWork = z.output<typeof analysisSchema>;

export function expandedSiteNames(name: string, count: number): string[] {
  return count === 1 ? [name] : Array.from({ length: count }, (_, i) => `${name}-${i + 1}`);
}
