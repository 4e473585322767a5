/**
 * The secrets every node of a deployment must share: resume tokens and
 * pilot-job tokens signed by one node verify on any other and after restarts.
 * On the embedded store they live in the data directory; on Redis, in Redis,
 * so nodes need share nothing else (a node that kept one in its data
 * directory before offers it first, so what it signed stays valid).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RedisClient } from "./redis-connection.js";

export type SecretName = "resume-secret" | "pilot-job-secret";

const SECRET_BYTES = 32;

/** The secret in `<dataDir>/<name>`, made (owner-only) on first use. */
export function secretInDataDir(dataDir: string, name: SecretName): Buffer {
  const path = join(dataDir, name);
  try {
    return readFileSync(path);
  } catch {
    const secret = randomBytes(SECRET_BYTES);
    writeFileSync(path, secret, { mode: 0o600 });
    return secret;
  }
}

/** The deployment's secret on Redis: the first node to ask sets it (SET NX), every node reads the same. */
export async function secretOnRedis(
  client: RedisClient,
  prefix: string,
  name: SecretName,
  dataDir: string,
): Promise<Buffer> {
  const key = `${prefix}:secret:${name}`;
  const local = join(dataDir, name);
  const offered = existsSync(local) ? readFileSync(local) : randomBytes(SECRET_BYTES);
  await client.set(key, offered, "NX");
  const stored = await client.getBuffer(key);
  if (!stored || stored.length < 16)
    throw new Error(`redis: the shared ${name} at ${key} is missing or too short`);
  return stored;
}
