/**
 * A throwaway Redis Cluster on free local ports: N masters, optionally a
 * replica each, config files in a temporary directory removed at stop. What
 * `panda up --redis-cluster` runs the grid on, and what the tests start.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.js";
import {
  pollUntil,
  type RedisServerProcess,
  redisBinariesAvailable,
  startRedisServer,
  withProbe,
} from "./redis-server-process.js";

const HOST = "127.0.0.1";
const START_ATTEMPTS = 3;
const CREATE_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 30_000;

export interface LocalRedisClusterOptions {
  /** Masters, each holding a third (for 3) of the slots; Redis needs at least 3. */
  masters?: number;
  /** Replicas per master (`--cluster-replicas`): 1 lets the Cluster survive losing a master. */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before it is
   * failed over. Redis's default is 15 s; a local cluster fails over sooner.
   */
  nodeTimeoutMs?: number;
}

export interface LocalRedisNode {
  host: string;
  port: number;
  server: RedisServerProcess;
}

export interface LocalRedisCluster {
  nodes: LocalRedisNode[];
  /** The nodes as a `--redis` setting: comma-separated seed URLs. */
  seeds: string;
  /** The nodes that are masters now (a failover changes them). */
  masters(): Promise<LocalRedisNode[]>;
  /**
   * Starts a node that was stopped or killed again, on its port with its
   * cluster config: it rejoins, as a replica of the master that took its
   * slots if it had been failed over. Resolves once its replication is whole.
   */
  revive(node: LocalRedisNode): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the cluster and resolves once every node reports `cluster_state:ok`
 * and every replica is in sync with its master; null when there is no
 * `redis-server`/`redis-cli` to run one.
 */
export async function startLocalRedisCluster(
  options: LocalRedisClusterOptions = {},
): Promise<LocalRedisCluster | null> {
  if (!redisBinariesAvailable()) return null;
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 5000;
  const dir = await mkdtemp(join(tmpdir(), "panda-cluster-"));
  const servers: RedisServerProcess[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++)
      servers.push(await startClusterNode(dir, nodeTimeoutMs));
    const addresses = servers.map((server) => `${HOST}:${server.port}`);
    await promisify(execFile)(
      "redis-cli",
      ["--cluster", "create", ...addresses, "--cluster-replicas", String(replicas), "--cluster-yes"],
      { timeout: CREATE_TIMEOUT_MS },
    );
    await pollUntil(
      async () =>
        (await Promise.all(servers.map((server) => nodeReady(server.port, replicas)))).every(Boolean),
      "cluster_state:ok and replicas in sync on every node",
      CONVERGE_TIMEOUT_MS,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const nodes = servers.map((server) => ({ host: HOST, port: server.port, server }));
  return {
    nodes,
    seeds: nodes.map((n) => `redis://${n.host}:${n.port}`).join(","),
    async masters() {
      const roles = await Promise.all(nodes.map((n) => roleOf(n.port)));
      return nodes.filter((_, i) => roles[i] === "master");
    },
    async revive(node) {
      const server = await startRedisServer(node.port, clusterNodeArgs(dir, node.port, nodeTimeoutMs));
      if (!server) throw new Error(`redis-server did not start again on port ${node.port}`);
      servers[servers.indexOf(node.server)] = server;
      node.server = server;
      await pollUntil(
        () => nodeReady(node.port, 0),
        `node ${node.port} back in the cluster`,
        CONVERGE_TIMEOUT_MS,
      );
    },
    stop,
  };
}

async function startClusterNode(dir: string, nodeTimeoutMs: number): Promise<RedisServerProcess> {
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort({ withClusterBus: true });
    const server = await startRedisServer(port, clusterNodeArgs(dir, port, nodeTimeoutMs));
    if (server) return server;
  }
  throw new Error(`could not start a cluster node in ${START_ATTEMPTS} attempts`);
}

function clusterNodeArgs(dir: string, port: number, nodeTimeoutMs: number): string[] {
  return [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    join(dir, `nodes-${port}.conf`),
    "--cluster-node-timeout",
    String(nodeTimeoutMs),
    // A replica takes over however long it was cut off: losing the cluster is worse here.
    "--cluster-replica-validity-factor",
    "0",
    "--dir",
    dir,
  ];
}

async function roleOf(port: number): Promise<"master" | "replica" | null> {
  const info = await withProbe(`redis://${HOST}:${port}`, (redis) => redis.info("replication"));
  if (info === null) return null;
  return /^role:master/m.test(info) ? "master" : "replica";
}

/** The cluster is ok here, and this node's replication is whole: a master has its replicas, a replica its link. */
async function nodeReady(port: number, replicasPerMaster: number): Promise<boolean> {
  const ready = await withProbe(`redis://${HOST}:${port}`, async (redis) => {
    const cluster = String(await redis.call("CLUSTER", "INFO"));
    if (!cluster.includes("cluster_state:ok")) return false;
    const replication = await redis.info("replication");
    if (/^role:master/m.test(replication)) {
      const connected = Number(/^connected_slaves:(\d+)/m.exec(replication)?.[1] ?? 0);
      return connected >= replicasPerMaster;
    }
    return /^master_link_status:up/m.test(replication);
  });
  return ready === true;
}
