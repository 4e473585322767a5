// The factory's YAML configuration: one zod schema, and errors that name the field to fix.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { agentNameSchema } from "../actors/pilot-job/schema.js";
import { nameSchema } from "../actors/shared/schemas.js";

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http or https URL" });
const count = z.number().int().nonnegative();
const positiveSec = z.number().positive();

export const BATCH_SYSTEMS = ["slurm", "local"] as const;

const pilotFlagsSchema = z.strictObject({
  /** `--multitask`: a secondary thread runs short analysis jobs beside the primary. */
  multitask: z.boolean().default(true),
  /** `--max-jobs`: primary jobs a pilot runs before it ends; unset, it runs until idle. */
  maxJobs: z.number().int().positive().optional(),
  /** `--idle-timeout`: a pilot with no work for this long ends, freeing the batch slot. */
  idleTimeoutSec: positiveSec.default(60),
  /** `--call-home-timeout`: a pilot that cannot reach the server ends (exit 4) instead of idling. */
  callHomeTimeoutSec: positiveSec.default(120),
});

const throttleSchema = z.strictObject({
  /** A pilot job that fails (non-zero exit) sooner than this after it started failed fast. */
  fastFailSec: positiveSec.default(60),
  /** Fast failures in a row that throttle the queue. */
  failuresToThrottle: z.number().int().positive().default(3),
  /** The first throttled interval between submissions; it doubles with every further fast failure. */
  initialBackoffSec: positiveSec.default(30),
  maxBackoffSec: positiveSec.default(1800),
});

const queueSchema = z.strictObject({
  name: agentNameSchema,
  site: nameSchema,
  batchSystem: z.enum(BATCH_SYSTEMS),
  /** The Slurm partition; required for Slurm. */
  partition: z.string().min(1).optional(),
  /** Pilots each batch job runs side by side. */
  pilotsPerJob: z.number().int().positive().max(64).default(1),
  walltimeSec: z.number().int().positive().default(3600),
  /** Per batch job. */
  cores: z.number().int().positive().default(1),
  memoryMb: z.number().int().positive().default(2000),
  /** Batch jobs waiting in the batch system at most. */
  maxQueued: count.default(10),
  /** Batch jobs queued or running at most. */
  maxRunning: count.default(100),
  /** A queued job older than this is cancelled: its pilot token would expire before its walltime ends. */
  maxQueueWaitSec: z
    .number()
    .int()
    .positive()
    .default(6 * 3600),
  /** The site's pilot token (or an operator's), one line in a file readable by the factory only. */
  tokenFile: z.string().min(1).optional(),
  pilot: pilotFlagsSchema.default(pilotFlagsSchema.parse({})),
  throttle: throttleSchema.default(throttleSchema.parse({})),
  /** Further `sbatch` arguments (`--account=X`, `--qos=Y`), passed as they are. */
  sbatchArgs: z.array(z.string().min(1)).default([]),
});
export type QueueConfig = z.output<typeof queueSchema>;

export const factoryConfigSchema = z
  .strictObject({
    /** Names the factory's records on the server; one name per factory process. */
    name: agentNameSchema,
    /** The server the factory talks to. */
    server: httpUrl,
    /** The server as worker nodes reach it, when that differs (a cluster-internal address). */
    pilotServer: httpUrl.optional(),
    /** Default for queues without their own. */
    tokenFile: z.string().min(1).optional(),
    /** Job scripts' logs and the local batch system's records; relative paths are from the config file. */
    stateDir: z.string().min(1),
    pollSeconds: positiveSec.default(10),
    /** The Node 20 binary as worker nodes find it. */
    node: z.string().min(1).default("node"),
    queues: z.array(queueSchema).min(1, "name at least one queue"),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.queues.forEach((queue, index) => {
      if (queue.batchSystem === "slurm" && !queue.partition)
        ctx.addIssue({
          code: "custom",
          path: ["queues", index, "partition"],
          message: "is required for Slurm",
        });
      if (seen.has(queue.name))
        ctx.addIssue({
          code: "custom",
          path: ["queues", index, "name"],
          message: `${queue.name} is used twice`,
        });
      seen.add(queue.name);
      if (queue.maxRunning < queue.maxQueued)
        ctx.addIssue({
          code: "custom",
          path: ["queues", index, "maxRunning"],
          message: "must be at least maxQueued (it counts queued and running jobs)",
        });
      if (!queue.tokenFile && !config.tokenFile)
        ctx.addIssue({
          code: "custom",
          path: ["queues", index, "tokenFile"],
          message: "is required (here or at the top level): the file holding the site's pilot token",
        });
    });
  });
export type FactoryConfig = z.output<typeof factoryConfigSchema>;

/** A configuration that cannot be used; the message names every bad field. */
export class FactoryConfigError extends Error {
  override readonly name = "FactoryConfigError";
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) =>
      typeof part === "number" ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part),
    "",
  );
}

/** Parses YAML text; paths (stateDir, token files) resolve against `baseDir`. */
export function parseFactoryConfig(text: string, source: string, baseDir: string): FactoryConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new FactoryConfigError(`${source} is not YAML: ${(err as Error).message}`);
  }
  const parsed = factoryConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `  ${fieldPath(issue.path) || "(top)"}: ${issue.message}`,
    );
    throw new FactoryConfigError(`${source} is not a valid factory configuration:\n${lines.join("\n")}`);
  }
  const config = parsed.data;
  const at = (path: string) => resolve(baseDir, path);
  return {
    ...config,
    stateDir: at(config.stateDir),
    ...(config.tokenFile ? { tokenFile: at(config.tokenFile) } : {}),
    queues: config.queues.map((q) => (q.tokenFile ? { ...q, tokenFile: at(q.tokenFile) } : q)),
  };
}

export function loadFactoryConfig(path: string): FactoryConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new FactoryConfigError(
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseFactoryConfig(text, path, dirname(resolve(path)));
}

/** The token a queue acts with: its file's first line. */
export function readQueueToken(config: FactoryConfig, queue: QueueConfig): string {
  const path = queue.tokenFile ?? config.tokenFile!;
  let token: string;
  try {
    token = readFileSync(path, "utf8").split("\n")[0]!.trim();
  } catch (err) {
    throw new FactoryConfigError(
      `queue ${queue.name}: cannot read its tokenFile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (!token) throw new FactoryConfigError(`queue ${queue.name}: its tokenFile ${path} is empty`);
  return token;
}
