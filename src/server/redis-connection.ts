/**
 * Where a server node keeps its state on Redis: one server, or a Redis
 * Cluster found from any of its nodes. Operators give one URL or several
 * (comma-separated seeds); whether it is a Cluster is asked of the first seed
 * that answers, so the same setting works for both and a Cluster can be
 * reached while one of its nodes is down.
 */
import { z } from "zod";
import type { Logger } from "../runtime/logger.js";
import { Cluster, type ClusterNode, Redis, type RedisOptions } from "../store/ioredis.js";

export type RedisClient = Redis | Cluster;

export interface RedisSeed {
  host: string;
  port: number;
  /** From the URL's user part; never logged. */
  username?: string;
  password?: string;
  tls: boolean;
  /** The database of a single server (`redis://host/2`); a Cluster has only 0. */
  db: number;
}

const seedUrlSchema = z
  .string()
  .trim()
  .regex(/^rediss?:\/\/[^,\s]+$/, "must be a redis:// or rediss:// URL");

/** The seeds of a `--redis` setting: one URL or several separated by commas; throws naming what is wrong. */
export function parseRedisSeeds(text: string): RedisSeed[] {
  const parts = text.split(",").filter((p) => p.trim() !== "");
  if (parts.length === 0) throw new Error("redis: no URL given");
  return parts.map((part, i) => {
    const checked = seedUrlSchema.safeParse(part);
    if (!checked.success) throw new Error(`redis URL ${i + 1}: ${checked.error.issues[0]?.message}`);
    const url = new URL(checked.data);
    const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
    if (!Number.isInteger(db) || db < 0) throw new Error(`redis URL ${i + 1}: the database must be a number`);
    const seed: RedisSeed = {
      host: url.hostname,
      port: url.port ? Number(url.port) : 6379,
      tls: url.protocol === "rediss:",
      db,
    };
    if (url.username) seed.username = decodeURIComponent(url.username);
    if (url.password) seed.password = decodeURIComponent(url.password);
    return seed;
  });
}

function optionsOf(seed: RedisSeed): RedisOptions {
  const options: RedisOptions = { host: seed.host, port: seed.port, db: seed.db };
  if (seed.username) options.username = seed.username;
  if (seed.password) options.password = seed.password;
  if (seed.tls) options.tls = {};
  return options;
}

/** True when the server answers that it is a Cluster node (`cluster_enabled:1`). */
async function isClusterNode(seed: RedisSeed): Promise<boolean> {
  const probe = new Redis({
    ...optionsOf(seed),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // Its failure is the answer (the caller tries the next seed), not an unhandled event.
  probe.on("error", () => {});
  try {
    await probe.connect();
    return /^cluster_enabled:1/m.test(await probe.info("cluster"));
  } finally {
    probe.disconnect();
  }
}

/**
 * Connects to Redis or a Redis Cluster. On one server, auto-pipelining
 * gathers the small commands of one turn (index reads and writes,
 * acknowledgements) into one write; the group commit batches on its own.
 */
export async function connectRedis(
  text: string,
  log: Logger,
): Promise<{ client: RedisClient; cluster: boolean }> {
  const seeds = parseRedisSeeds(text);
  let cluster: boolean | null = null;
  let answered: RedisSeed | null = null;
  let lastError: unknown = null;
  for (const seed of seeds) {
    try {
      cluster = await isClusterNode(seed);
      answered = seed;
      break;
    } catch (err) {
      lastError = err;
      log.warn(
        { host: seed.host, port: seed.port, err: (err as Error).message },
        "redis seed did not answer",
      );
    }
  }
  if (cluster === null || answered === null) {
    throw new Error(`redis: no seed answered (${(lastError as Error | null)?.message ?? "no seeds"})`);
  }
  if (!cluster) {
    if (seeds.length > 1)
      log.warn({ seeds: seeds.length }, "redis: not a Cluster; using the first seed that answered only");
    return { client: new Redis({ ...optionsOf(answered), enableAutoPipelining: true }), cluster: false };
  }
  if (seeds.some((s) => s.db !== 0))
    throw new Error("redis: a Cluster has only database 0; drop the /N from the URLs");
  const nodes: ClusterNode[] = seeds.map((s) => ({ host: s.host, port: s.port }));
  const { host: _h, port: _p, db: _d, ...shared } = optionsOf(seeds[0]!);
  // No auto-pipelining on a Cluster: it groups a turn's commands per node, and calls that
  // read several shards' keys (one slot each) would not fit one group.
  const client = new Cluster(nodes, { redisOptions: shared });
  log.info({ seeds: nodes.length }, "state on a Redis Cluster");
  return { client, cluster: true };
}
