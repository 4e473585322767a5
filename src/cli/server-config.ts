/**
 * `panda server`'s settings from flags and environment variables, and the sites
 * and tokens files it reads, each checked before the node starts.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { fairShareConfigSchema } from "../brokerage/shares.js";
import { serverSandboxSchema } from "../sandbox/sandbox-element.js";
import { logLevelSchema } from "../server/json-log.js";
import { parseRedisSeeds } from "../server/redis-connection.js";
import { tokenConfigSchema } from "../server/tokens.js";
import { DEFAULT_FSYNC_INTERVAL_MS } from "../store/durable-store.js";
import { gridSiteSchema } from "../workload/grid-site.js";
import { httpUrlSchema } from "./config.js";
import { usageError } from "./errors.js";

/** Each setting of `panda server`: its flag, its environment variable. */
export const SERVER_SETTINGS = {
  host: { flag: "--host", env: "PANDA_HOST" },
  port: { flag: "--port", env: "PANDA_PORT" },
  dataDir: { flag: "--data-dir", env: "PANDA_DATA_DIR" },
  redisUrl: { flag: "--redis", env: "PANDA_REDIS_URL" },
  redisPrefix: { flag: "--redis-prefix", env: "PANDA_REDIS_PREFIX" },
  redisWaitReplicas: { flag: "--redis-wait-replicas", env: "PANDA_REDIS_WAIT_REPLICAS" },
  ephemeral: { flag: "--ephemeral", env: "PANDA_EPHEMERAL" },
  fsyncIntervalMs: { flag: "--fsync-interval-ms", env: "PANDA_FSYNC_INTERVAL_MS" },
  tokensFile: { flag: "--tokens", env: "PANDA_TOKENS_FILE" },
  sitesFile: { flag: "--sites", env: "PANDA_SITES_FILE" },
  sharesFile: { flag: "--shares", env: "PANDA_SHARES_FILE" },
  sandboxFile: { flag: "--sandbox-config", env: "PANDA_SANDBOX_FILE" },
  logLevel: { flag: "--log-level", env: "PANDA_LOG_LEVEL" },
  publicUrl: { flag: "--public-url", env: "PANDA_PUBLIC_URL" },
  readRequiresToken: { flag: "--read-requires-token", env: "PANDA_READ_REQUIRES_TOKEN" },
  shardCount: { flag: "--shards", env: "PANDA_SHARDS" },
  leaseMs: { flag: "--lease-ms", env: "PANDA_LEASE_MS" },
} as const;
type Setting = keyof typeof SERVER_SETTINGS;

const booleanText = z.union([
  z.boolean(),
  z.enum(["true", "false", "1", "0"]).transform((t) => t === "true" || t === "1"),
]);

/** `panda server`'s configuration: one schema for flags and environment alike. */
export const serverCommandConfigSchema = z
  .object({
    host: z.string().min(1).default("0.0.0.0"),
    port: z.coerce.number().int().min(0).max(65_535).default(8080),
    dataDir: z.string().min(1).default("panda-data"),
    redisUrl: z
      .string()
      .superRefine((text, ctx) => {
        try {
          parseRedisSeeds(text);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
        }
      })
      .optional(),
    redisPrefix: z.string().min(1).default("panda"),
    redisWaitReplicas: z.coerce.number().int().min(0).max(16).default(0),
    ephemeral: booleanText.default(false),
    fsyncIntervalMs: z.coerce.number().int().min(0).max(3_600_000).default(DEFAULT_FSYNC_INTERVAL_MS),
    tokensFile: z.string().min(1).optional(),
    sitesFile: z.string().min(1).optional(),
    sharesFile: z.string().min(1).optional(),
    sandboxFile: z.string().min(1).optional(),
    logLevel: logLevelSchema.default("info"),
    publicUrl: httpUrlSchema.optional(),
    readRequiresToken: booleanText.default(false),
    shardCount: z.coerce.number().int().min(1).max(4096).default(64),
    leaseMs: z.coerce.number().int().min(500).max(600_000).default(10_000),
  })
  .refine((c) => c.redisWaitReplicas === 0 || c.redisUrl, {
    path: ["redisWaitReplicas"],
    message: "waits for Redis replicas: it needs --redis / $PANDA_REDIS_URL",
  })
  .refine((c) => !(c.ephemeral && c.redisUrl), {
    path: ["ephemeral"],
    message: "keeps the embedded store in memory: it does not go with --redis / $PANDA_REDIS_URL",
  });
export type ServerCommandConfig = z.output<typeof serverCommandConfigSchema>;

/** Flags win over the environment; every error names both places a setting can come from. */
export function resolveServerConfig(
  flags: Partial<Record<Setting, string | boolean>>,
  env: NodeJS.ProcessEnv = process.env,
): ServerCommandConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, { env: name }] of Object.entries(SERVER_SETTINGS) as [Setting, { env: string }][]) {
    const value = flags[key] ?? env[name];
    if (value !== undefined && value !== "") raw[key] = value;
  }
  const parsed = serverCommandConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path[0] as Setting | undefined;
      const where = key ? `${SERVER_SETTINGS[key].flag} / $${SERVER_SETTINGS[key].env}` : "configuration";
      return `${where}: ${issue.message}`;
    });
    throw usageError(problems.join("; "));
  }
  return parsed.data;
}

/** A YAML or JSON file, validated; errors name the file and the field. */
function readConfigFile<S extends z.ZodType>(path: string, schema: S, what: string): z.output<S> {
  let value: unknown;
  try {
    value = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw usageError(`cannot read the ${what} file ${path}: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`);
    throw usageError(`${path} is not a ${what} file: ${problems.join("; ")}`);
  }
  return parsed.data;
}

/** `sites:` a list of sites as `panda up` defines them (name, resources, storage, ...). */
export const sitesFileSchema = z.object({ sites: z.array(gridSiteSchema) });
/** `tokens:` user tokens (token, kind user, user, role) and pilot tokens (token, kind pilot, site). */
export const tokensFileSchema = z.object({ tokens: z.array(tokenConfigSchema) });

export function readSitesFile(path: string) {
  return readConfigFile(path, sitesFileSchema, "sites").sites;
}

/** `fairShare:` the grid's global shares and the user priority rule (see docs/operations.md). */
export const sharesFileSchema = z.object({ fairShare: fairShareConfigSchema });

export function readSharesFile(path: string) {
  return readConfigFile(path, sharesFileSchema, "shares").fairShare;
}

/** `sandbox:` size limits, retention and storage of users' sandboxes (see docs/operations.md). */
export const sandboxFileSchema = z.object({ sandbox: serverSandboxSchema });

export function readSandboxFile(path: string) {
  return readConfigFile(path, sandboxFileSchema, "sandbox").sandbox;
}

export function readTokensFile(path: string) {
  return readConfigFile(path, tokensFileSchema, "tokens").tokens;
}
