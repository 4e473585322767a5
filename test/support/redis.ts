import { randomBytes } from "node:crypto";
import { type Cluster, Redis } from "ioredis";
import { freePort } from "./free-port.js";
import { answersPing, redisBinariesAvailable, reportUnavailable, startRedisServer } from "./redis-process.js";

const LOCAL_REDIS_URL = "redis://127.0.0.1:6379";
/** A freshly picked port can be taken by a parallel test file before our server binds it. */
const START_ATTEMPTS = 3;

let located: Promise<string | null> | undefined;

/**
 * The Redis the tests use, found once per process: `PANDA_TEST_REDIS_URL`,
 * else a local Redis on 6379 if it answers, else a `redis-server` started for
 * this process (killed when it exits). Null, after a loud warning, when there
 * is none; on CI that throws instead.
 */
export function findRedisUrl(): Promise<string | null> {
  located ??= locateRedis();
  return located;
}

/** Like `findRedisUrl` for suites that cannot run without Redis: no Redis is an error. */
export async function getRedisUrl(): Promise<string> {
  const url = await findRedisUrl();
  if (!url) throw new Error("no Redis for the tests: set PANDA_TEST_REDIS_URL or install redis-server");
  return url;
}

async function locateRedis(): Promise<string | null> {
  const configured = process.env.PANDA_TEST_REDIS_URL;
  if (configured) return configured;
  if (await answersPing(LOCAL_REDIS_URL)) return LOCAL_REDIS_URL;
  if (redisBinariesAvailable()) {
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const server = await startRedisServer(await freePort());
      if (server) return `redis://127.0.0.1:${server.port}`;
    }
  }
  reportUnavailable("Redis (no PANDA_TEST_REDIS_URL, nothing on 127.0.0.1:6379, no redis-server to start)");
  return null;
}

/** A key prefix no other test or run shares, e.g. `t:contract:3f9a0c1b2d4e`. */
export function uniquePrefix(name: string): string {
  return `t:${name}:${randomBytes(6).toString("hex")}`;
}

/** The keys under `prefix` that one server (a standalone Redis or one cluster node) holds. */
export async function keysOnNode(node: Redis, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}:*`;
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found;
}

/** Deletes every key under `prefix`; on a cluster, from every master. */
export async function cleanupPrefix(redis: Redis | Cluster, prefix: string): Promise<void> {
  const masters = redis.isCluster ? (redis as Cluster).nodes("master") : [redis as Redis];
  for (const node of masters) {
    const keys = await keysOnNode(node, prefix);
    if (keys.length === 0) continue;
    // One key per UNLINK: a cluster node refuses keys of different slots in one command.
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.unlink(key);
    await pipeline.exec();
  }
}

/** Deletes every key under `prefix` on the single Redis at `redisUrl`, over a connection of its own. */
export async function cleanupPrefixAt(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    await cleanupPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
