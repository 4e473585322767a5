/**
 * `panda up`: a whole grid in one process (server, store, local sites) with its
 * local pilots as child processes, for a laptop or a demo.
 */
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { type LogLevel, logLevelSchema } from "../server/json-log.js";
import { startServerNode } from "../server/server.js";
import { DEFAULT_FSYNC_INTERVAL_MS } from "../store/durable-store.js";
import { queueNames } from "../store/index-names.js";
import { PandaClient } from "./client.js";
import { DEFAULT_DATA_DIR, ENV, writeLocalConfig } from "./config.js";
import { CliError, EXIT, usageError } from "./errors.js";
import { FileLogger } from "./file-logger.js";
import { LOCAL_SITE_NAMES, planLocalGrid } from "./local-grid.js";
import { LocalPilots } from "./local-pilots.js";
import { integerArg } from "./options.js";
import { print } from "./output.js";
import { reportProgress } from "./progress.js";
import { youngGenerationAdvice } from "./server-heap.js";
import { firstSignal, pilotSpecs, say, shownPath, startDemo } from "./up-common.js";
import { runUpNodes } from "./up-nodes.js";

export interface UpFlags {
  port: number;
  dataDir: string;
  redis?: string;
  ephemeral: boolean;
  fsyncIntervalMs: number;
  pilotsPerSite: number;
  demo: boolean;
  drainSeconds: number;
  logLevel: LogLevel;
  /** Server nodes; more than one run as `panda server` child processes on Redis. */
  nodes: number;
  /** Start a 3-master Redis Cluster here for the nodes. */
  redisCluster: boolean;
}

const HOST = "127.0.0.1";

/** Where the store is, without a password that a Redis URL may carry. */
function describeStore(flags: UpFlags, dataDir: string): string {
  if (flags.ephemeral)
    return `embedded, in memory (state and its storage are gone when this stops; without --ephemeral they are kept in ${shownPath(dataDir)})`;
  if (!flags.redis)
    return `embedded, on disk in ${shownPath(join(dataDir, "state"))} (restarting brings the grid back; a machine crash loses at most the last ${flags.fsyncIntervalMs} ms)`;
  try {
    const url = new URL(flags.redis);
    return `Redis at ${url.host}`;
  } catch {
    return "Redis";
  }
}

async function startNode(
  flags: UpFlags,
  dataDir: string,
  log: FileLogger,
  plan: ReturnType<typeof planLocalGrid>,
) {
  try {
    return await startServerNode({
      host: HOST,
      port: flags.port,
      dataDir,
      ...(flags.redis ? { redisUrl: flags.redis } : {}),
      ephemeral: flags.ephemeral,
      fsyncIntervalMs: flags.fsyncIntervalMs,
      sites: plan.sites,
      tokens: plan.tokens,
      log,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new CliError(
        EXIT.failed,
        `port ${flags.port} on ${HOST} is in use (another \`panda up\`?): pass --port N, or --port 0 for a free one`,
      );
    }
    throw err;
  }
}

/**
 * `panda up`: a whole grid in one process (server, store, three sites) with
 * local pilots as child processes, until SIGINT/SIGTERM: then the pilots drain,
 * the server closes, and the process exits 0.
 */
export async function runUp(flags: UpFlags): Promise<void> {
  const dataDir = resolve(flags.dataDir);
  const plan = planLocalGrid();
  const log = new FileLogger(join(dataDir, "logs", "server.log"), flags.logLevel);
  const node = await startNode(flags, dataDir, log, plan);
  const advice = youngGenerationAdvice();
  if (advice) log.warn({}, advice);
  const localConfigPath = writeLocalConfig(dataDir, { server: node.url, token: plan.adminToken });
  const specs = pilotSpecs(dataDir, plan, flags.pilotsPerSite);
  print(
    [
      `panda up: a single-node grid at ${node.url}`,
      `  monitor  ${node.url}/`,
      `  store    ${describeStore(flags, dataDir)}`,
      `  sites    ${LOCAL_SITE_NAMES.join(", ")}: ${flags.pilotsPerSite} pilots each (logs in ${shownPath(join(dataDir, "logs"))}/)`,
      `  config   ${shownPath(localConfigPath)} (server and admin token for panda submit, jobs, inspect)`,
      "try: panda jobs | panda inspect task ID | panda submit --jobs 3 -- sh -c 'echo hi'",
      "Ctrl-C stops everything",
    ].join("\n"),
  );
  const stopProgress = reportProgress(node.grid.runtime, say);
  const pilots = new LocalPilots(node.url, specs, join(dataDir, "batch", "local"), say);
  pilots.start();
  const signal = firstSignal(() => {
    say("second signal: stopping the pilots' payloads now");
    pilots.stopNow();
  });
  if (flags.demo) {
    const client = new PandaClient({ server: node.url, token: plan.adminToken, serverSource: "panda up" });
    startDemo(
      {
        connectedPilots: async () => node.dispatcher.connectedPilots().length,
        taskCount: () => node.grid.ctx.index.size(queueNames.tasks()),
      },
      client,
      specs.length,
    );
  }
  say(`${await signal}: draining the pilots (up to ${flags.drainSeconds} s), then stopping the server`);
  await pilots.stop(flags.drainSeconds * 1000);
  stopProgress();
  await node.close();
  await log.close();
  say("stopped");
}

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description("run a single-node grid here: server, embedded store, 3 sites and local pilots")
    .addOption(
      new Option("--port <port>", `the port on ${HOST}; 0 picks a free one`)
        .argParser(integerArg(0, 65_535))
        .default(8080)
        .env("PANDA_PORT"),
    )
    .addOption(
      new Option("--data-dir <dir>", "storage, logs, pilot work directories and local.json")
        .default(DEFAULT_DATA_DIR)
        .env(ENV.dataDir),
    )
    .addOption(
      new Option("--redis <url>", "keep state in Redis instead of the embedded store").env("PANDA_REDIS_URL"),
    )
    .option(
      "--ephemeral",
      "keep the embedded store in memory only: state and storage go when this stops",
      false,
    )
    .addOption(
      new Option(
        "--fsync-interval-ms <ms>",
        "how often the embedded store's log is fsynced (what a machine crash can lose); 0: every change",
      )
        .argParser(integerArg(0, 3_600_000))
        .default(DEFAULT_FSYNC_INTERVAL_MS)
        .env("PANDA_FSYNC_INTERVAL_MS"),
    )
    .option("--pilots-per-site <count>", "local pilots per site", integerArg(0, 32), 2)
    .option(
      "--drain-seconds <seconds>",
      "on stop, how long running jobs may finish",
      integerArg(0, 86_400),
      10,
    )
    .addOption(
      new Option("--log-level <level>", "the server log's threshold (.panda/logs/server.log)")
        .choices(logLevelSchema.options)
        .env("PANDA_LOG_LEVEL")
        .default("info"),
    )
    .option("--no-demo", "do not create the sample dataset and tasks")
    .option(
      "--nodes <count>",
      "server nodes, each a `panda server` child process on its own port (from --port up); more than 1 needs --redis or --redis-cluster",
      integerArg(1, 16),
      1,
    )
    .option(
      "--redis-cluster",
      "start a 3-master Redis Cluster on free local ports for the nodes (redis-server and redis-cli on the PATH); gone when this stops",
      false,
    )
    .action(async (flags: UpFlags) => {
      if (flags.ephemeral && (flags.redis || flags.redisCluster))
        throw usageError(
          "--ephemeral keeps the embedded store in memory: it does not go with --redis or --redis-cluster",
        );
      if (flags.redisCluster && flags.redis)
        throw usageError("--redis-cluster starts a Redis Cluster here: it does not go with --redis URL");
      if (flags.nodes > 1 && !flags.redis && !flags.redisCluster)
        throw usageError(
          "--nodes: several nodes share their state through Redis: add --redis URL or --redis-cluster",
        );
      if (flags.nodes > 1 || flags.redisCluster) await runUpNodes(flags);
      else await runUp(flags);
    });
}
