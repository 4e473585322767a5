import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { freePort } from "./free-port.js";
import {
  pollUntil,
  type RedisServerProcess,
  redisBinariesAvailable,
  startRedisServer,
  withProbe,
} from "./redis-process.js";

const MASTERS = 3;
const START_ATTEMPTS = 3;
const CREATE_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 30_000;

export interface RedisClusterHandle {
  nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/**
 * A throwaway 3-master Redis Cluster on free local ports, its config files in a
 * temporary directory. Resolves once every node reports `cluster_state:ok`;
 * null when there is no `redis-server`/`redis-cli` to run one.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle | null> {
  if (!redisBinariesAvailable()) return null;
  const dir = await mkdtemp(join(tmpdir(), "panda-cluster-"));
  const servers: RedisServerProcess[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < MASTERS; i++) servers.push(await startClusterNode(dir));
    const addresses = servers.map((server) => `127.0.0.1:${server.port}`);
    await promisify(execFile)(
      "redis-cli",
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: CREATE_TIMEOUT_MS },
    );
    await pollUntil(
      async () => (await Promise.all(servers.map((server) => clusterStateOk(server.port)))).every(Boolean),
      "cluster_state:ok on every node",
      CONVERGE_TIMEOUT_MS,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: servers.map((server) => ({ host: "127.0.0.1", port: server.port })), stop };
}

async function startClusterNode(dir: string): Promise<RedisServerProcess> {
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort({ withClusterBus: true });
    const server = await startRedisServer(port, [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      join(dir, `nodes-${port}.conf`),
      "--dir",
      dir,
    ]);
    if (server) return server;
  }
  throw new Error(`could not start a cluster node in ${START_ATTEMPTS} attempts`);
}

async function clusterStateOk(port: number): Promise<boolean> {
  const info = await withProbe(`redis://127.0.0.1:${port}`, (redis) => redis.call("CLUSTER", "INFO"));
  return typeof info === "string" && info.includes("cluster_state:ok");
}

/**
 * A cluster for the tests of one describe block: started before them (or a
 * clear failure when the binaries are there and it does not start), stopped
 * after, with `admin` a client of it for checks and cleanup.
 */
export function useRedisCluster(): { readonly cluster: RedisClusterHandle; readonly admin: Cluster } {
  let cluster: RedisClusterHandle | null = null;
  let admin: Cluster | null = null;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    if (!cluster) throw new Error("redis-server and redis-cli were found, yet no cluster started");
    admin = new Cluster(cluster.nodes);
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
