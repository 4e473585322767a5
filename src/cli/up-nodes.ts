/**
 * `panda up --nodes N [--redis-cluster]`: a grid of several server nodes on
 * this machine, each a `panda server` child process, on a Redis given by
 * `--redis` or on a 3-master Redis Cluster started here; local pilots spread
 * over the nodes. Ctrl-C stops everything it started, in order: the pilots
 * drain, the nodes drain, the Cluster goes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PandaClient } from "./client.js";
import { writeLocalConfig } from "./config.js";
import { CliError, EXIT } from "./errors.js";
import { freePort } from "./free-port.js";
import { LOCAL_SITE_NAMES, planLocalGrid } from "./local-grid.js";
import { LocalPilots, selfCommand } from "./local-pilots.js";
import { type LocalRedisCluster, startLocalRedisCluster } from "./local-redis-cluster.js";
import { print } from "./output.js";
import { ServerChild } from "./server-children.js";
import type { UpFlags } from "./up.js";
import { firstSignal, pilotSpecs, say, shownPath, startDemo } from "./up-common.js";

const HOST = "127.0.0.1";
/** A local cluster fails a dead master over after this long: soon, for a grid on a laptop. */
const LOCAL_CLUSTER_NODE_TIMEOUT_MS = 2000;

/** Children left when `up` itself exits unexpectedly: killed rather than orphaned. */
const started = new Set<ServerChild>();
process.once("exit", () => {
  for (const node of started) if (node.pid) process.kill(node.pid, "SIGKILL");
});

/** The sites and tokens files the nodes read: one plan for every node, readable by this user only. */
function writeNodeFiles(dataDir: string, plan: ReturnType<typeof planLocalGrid>): string[] {
  mkdirSync(dataDir, { recursive: true });
  const sitesPath = join(dataDir, "up-sites.json");
  const tokensPath = join(dataDir, "up-tokens.json");
  writeFileSync(sitesPath, JSON.stringify({ sites: plan.sites }), { mode: 0o600 });
  writeFileSync(tokensPath, JSON.stringify({ tokens: plan.tokens }), { mode: 0o600 });
  return ["--sites", sitesPath, "--tokens", tokensPath];
}

async function startRedis(flags: UpFlags): Promise<{ setting: string; cluster: LocalRedisCluster | null }> {
  if (!flags.redisCluster) return { setting: flags.redis!, cluster: null };
  say("starting a 3-master Redis Cluster on free local ports");
  const cluster = await startLocalRedisCluster({ masters: 3, nodeTimeoutMs: LOCAL_CLUSTER_NODE_TIMEOUT_MS });
  if (!cluster)
    throw new CliError(
      EXIT.failed,
      "--redis-cluster runs redis-server and redis-cli, and they are not on the PATH (Debian: apt-get install redis-server)",
    );
  return { setting: cluster.seeds, cluster };
}

async function startNodes(
  flags: UpFlags,
  dataDir: string,
  redisSetting: string,
  plan: ReturnType<typeof planLocalGrid>,
): Promise<ServerChild[]> {
  const shared = [
    "--data-dir",
    dataDir,
    "--redis",
    redisSetting,
    "--log-level",
    flags.logLevel,
    ...writeNodeFiles(dataDir, plan),
  ];
  const self = selfCommand();
  const nodes: ServerChild[] = [];
  for (let i = 0; i < flags.nodes; i++) {
    const port = flags.port === 0 ? await freePort() : flags.port + i;
    const name = `node-${i + 1}`;
    const node = new ServerChild(
      { name, port, args: shared, logPath: join(dataDir, "logs", `server-${name}.log`) },
      self,
      HOST,
    );
    started.add(node);
    void node.exited.then(() => started.delete(node));
    nodes.push(node);
  }
  const healths = await Promise.allSettled(nodes.map((node) => node.healthy()));
  const failed = healths.find((h) => h.status === "rejected");
  if (failed) {
    await Promise.all(nodes.map((node) => node.stop()));
    const reason = (failed as PromiseRejectedResult).reason as Error;
    const hint =
      flags.port === 0
        ? ""
        : ` (ports ${flags.port}-${flags.port + flags.nodes - 1} taken? --port 0 picks free ones)`;
    throw new CliError(EXIT.failed, `a server node did not start: ${reason.message}${hint}`);
  }
  return nodes;
}

/** Pilots connected to each node, counted by the node itself (other nodes' counts lag by the registry's period). */
async function connectedPilots(nodes: readonly ServerChild[]): Promise<number> {
  const counts = await Promise.all(
    nodes.map(async (node) => {
      try {
        const answer = (await (await fetch(`${node.url}/api/v1/pilots`)).json()) as {
          node: string;
          pilots: { node: string }[];
        };
        return answer.pilots.filter((p) => p.node === answer.node).length;
      } catch {
        return 0;
      }
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

export async function runUpNodes(flags: UpFlags): Promise<void> {
  const dataDir = resolve(flags.dataDir);
  const plan = planLocalGrid();
  const redis = await startRedis(flags);
  let nodes: ServerChild[];
  try {
    nodes = await startNodes(flags, dataDir, redis.setting, plan);
  } catch (err) {
    await redis.cluster?.stop();
    throw err;
  }
  const urls = nodes.map((node) => node.url);
  const localConfigPath = writeLocalConfig(dataDir, { server: urls[0]!, token: plan.adminToken });
  const specs = pilotSpecs(dataDir, plan, flags.pilotsPerSite, urls);
  const store = redis.cluster
    ? `a 3-master Redis Cluster on ports ${redis.cluster.nodes.map((n) => n.port).join(", ")} (gone when this stops)`
    : "Redis (--redis)";
  print(
    [
      `panda up: a ${nodes.length}-node grid`,
      ...nodes.map(
        (node) =>
          `  ${node.spec.name}   ${node.url}   monitor ${node.url}/   (log ${shownPath(node.spec.logPath)})`,
      ),
      `  store    ${store}`,
      `  sites    ${LOCAL_SITE_NAMES.join(", ")}: ${flags.pilotsPerSite} pilots each, spread over the nodes (logs in ${shownPath(join(dataDir, "logs"))}/)`,
      `  config   ${shownPath(localConfigPath)} (${urls[0]} and the admin token for panda submit, jobs, inspect)`,
      "try: panda jobs | panda submit --jobs 30 -- sh -c 'sleep 5' | kill -9 a node's pid and watch its work move",
      "Ctrl-C stops everything",
    ].join("\n"),
  );
  const pilots = new LocalPilots(urls[0]!, specs, join(dataDir, "batch", "local"), say);
  pilots.start();
  const signal = firstSignal(() => {
    say("second signal: stopping the pilots' payloads now");
    pilots.stopNow();
  });
  if (flags.demo) {
    const client = new PandaClient({ server: urls[0]!, token: plan.adminToken, serverSource: "panda up" });
    startDemo(
      {
        connectedPilots: () => connectedPilots(nodes),
        taskCount: async () => (await client.listTasks({ limit: 1 })).length,
      },
      client,
      specs.length,
    );
  }
  let stopping = false;
  for (const node of nodes)
    void node.exited.then(({ code, signal: by }) => {
      if (!stopping)
        say(`${node.spec.name} exited (${by ?? `code ${code}`}); the other nodes take its shards`);
    });
  say(`${await signal}: draining the pilots (up to ${flags.drainSeconds} s), then the nodes`);
  stopping = true;
  await pilots.stop(flags.drainSeconds * 1000);
  await Promise.all(nodes.map((node) => node.stop()));
  await redis.cluster?.stop();
  say("stopped");
}
