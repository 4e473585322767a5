/**
 * Where the client finds its server and token (flags, then environment variables,
 * then the `local.json` that `panda up` writes) and that file's format.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { usageError } from "./errors.js";

/** Where `panda up` keeps its data unless told otherwise (relative to the working directory). */
export const DEFAULT_DATA_DIR = ".panda";
export const LOCAL_CONFIG_FILE = "local.json";
export const ENV = {
  server: "PANDA_SERVER",
  token: "PANDA_TOKEN",
  dataDir: "PANDA_DATA_DIR",
} as const;

export const httpUrlSchema = z.string().refine((text) => {
  try {
    return ["http:", "https:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}, "must be an http or https URL, e.g. http://127.0.0.1:8080");

/** What `panda up` writes for the client commands: its URL and an admin token. */
export const localConfigSchema = z.object({ server: httpUrlSchema, token: z.string().min(1) });
export type LocalConfig = z.infer<typeof localConfigSchema>;

/** Where a client command sends requests, and with which credential. */
export interface Connection {
  server: string;
  /** Absent is allowed: the read endpoints need none, and a write answers 401 with the fix. */
  token: string | undefined;
  /** Where the server URL came from, so an "unreachable" error can say what to change. */
  serverSource: string;
}

export interface ConnectionFlags {
  server?: string | undefined;
  token?: string | undefined;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/**
 * The local.json a client command reads: `$PANDA_DATA_DIR/local.json` when
 * that is set, else the nearest `.panda/local.json` in the working directory
 * or above it (so `panda jobs` works from a subdirectory of where `panda up` runs).
 */
export function findLocalConfig(cwd: string, env: NodeJS.ProcessEnv): string | null {
  const dataDir = env[ENV.dataDir];
  if (dataDir) {
    const path = join(resolve(cwd, dataDir), LOCAL_CONFIG_FILE);
    return existsSync(path) ? path : null;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const path = join(dir, DEFAULT_DATA_DIR, LOCAL_CONFIG_FILE);
    if (existsSync(path)) return path;
    if (dirname(dir) === dir) return null;
  }
}

export function readLocalConfig(path: string): LocalConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw usageError(
      `${path} is not readable JSON (${(err as Error).message}): delete it and rerun \`panda up\``,
    );
  }
  const parsed = localConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "file"}: ${issue.message}`);
    throw usageError(
      `${path} is not a panda local config (${issues.join("; ")}): delete it and rerun \`panda up\``,
    );
  }
  return parsed.data;
}

/** Writes local.json readable by its owner only: it holds an admin token. */
export function writeLocalConfig(dataDir: string, config: LocalConfig): string {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCAL_CONFIG_FILE);
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  // `mode` applies only when the file is created; an older file keeps its bits otherwise.
  chmodSync(path, 0o600);
  return path;
}

/**
 * The server and token for a client command: flags first, then PANDA_SERVER /
 * PANDA_TOKEN, then local.json. local.json's token is used only for local.json's
 * own server, so an admin token never travels to a server named elsewhere.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Connection {
  const localPath = findLocalConfig(cwd, env);
  const local = localPath ? readLocalConfig(localPath) : null;
  const candidates: [string | undefined, string][] = [
    [flags.server, "--server"],
    [env[ENV.server], ENV.server],
    [local?.server, localPath ?? ""],
  ];
  const chosen = candidates.find(([value]) => value !== undefined && value !== "");
  if (!chosen?.[0]) {
    throw usageError(
      `no server configured: run \`panda up\` here, or pass --server URL / set ${ENV.server} (and --token / ${ENV.token})`,
    );
  }
  const [rawServer, serverSource] = chosen;
  const checked = httpUrlSchema.safeParse(rawServer);
  if (!checked.success) {
    throw usageError(
      `the server URL from ${serverSource} ('${rawServer}') ${checked.error.issues[0]?.message}`,
    );
  }
  const server = withoutTrailingSlash(checked.data);
  const localToken = local && withoutTrailingSlash(local.server) === server ? local.token : undefined;
  const token = flags.token || env[ENV.token] || localToken;
  return { server, token, serverSource };
}
