import { Cluster } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import {
  type LocalRedisCluster,
  type LocalRedisClusterOptions,
  startLocalRedisCluster,
} from "../../src/cli/local-redis-cluster.js";

export type RedisClusterHandle = LocalRedisCluster;

/**
 * A throwaway Redis Cluster on free local ports (3 masters by default, no
 * replicas), the one `panda up --redis-cluster` runs; null when there is no
 * `redis-server`/`redis-cli` to run one.
 */
export function startRedisCluster(
  options: LocalRedisClusterOptions = {},
): Promise<RedisClusterHandle | null> {
  return startLocalRedisCluster(options);
}

/**
 * A cluster for the tests of one describe block: started before them (or a
 * clear failure when the binaries are there and it does not start), stopped
 * after, with `admin` a client of it for checks and cleanup.
 */
export function useRedisCluster(options: LocalRedisClusterOptions = {}): {
  readonly cluster: RedisClusterHandle;
  readonly admin: Cluster;
} {
  let cluster: RedisClusterHandle | null = null;
  let admin: Cluster | null = null;
  beforeAll(async () => {
    cluster = await startRedisCluster(options);
    if (!cluster) throw new Error("redis-server and redis-cli were found, yet no cluster started");
    admin = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
  }, 90_000);
  afterAll(async () => {
    await admin?.quit();
    await cluster?.stop();
  });
  return {
    get cluster() {
      return cluster!;
    },
    get admin() {
      return admin!;
    },
  };
}
