/** `panda server`: a standalone server node, configured by flags, environment and files. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { createJsonLogger } from "../server/json-log.js";
import { startServerNode } from "../server/server.js";
import { CliError, EXIT } from "./errors.js";
import {
  readSandboxFile,
  readSharesFile,
  readSitesFile,
  readTokensFile,
  resolveServerConfig,
  SERVER_SETTINGS,
} from "./server-config.js";
import { youngGenerationAdvice } from "./server-heap.js";

/**
 * A standalone server node: no pilots, no demo. Logs are JSON lines on
 * stdout; SIGINT or SIGTERM closes it and exits 0.
 */
export function registerServerCommand(program: Command): void {
  const s = SERVER_SETTINGS;
  program
    .command("server")
    .description("run a server node (API, pilot gateway, storage, monitor); flags or PANDA_* environment")
    .option(`${s.host.flag} <host>`, `listen address (default 0.0.0.0; $${s.host.env})`)
    .option(`${s.port.flag} <port>`, `listen port, 0 for a free one (default 8080; $${s.port.env})`)
    .option(
      `${s.dataDir.flag} <dir>`,
      `state, storage, secrets and created tokens (default ./panda-data; $${s.dataDir.env})`,
    )
    .option(
      `${s.redisUrl.flag} <url[,url...]>`,
      `keep state in Redis or a Redis Cluster (seeds, comma-separated; default: the embedded store; $${s.redisUrl.env})`,
    )
    .option(`${s.redisPrefix.flag} <prefix>`, `Redis key prefix (default panda; $${s.redisPrefix.env})`)
    .option(
      `${s.redisWaitReplicas.flag} <count>`,
      `answer each write only once this many Redis replicas have it (WAIT; default 0; $${s.redisWaitReplicas.env})`,
    )
    .option(
      s.ephemeral.flag,
      `the embedded store in memory only, gone at stop (default: on disk in <data-dir>/state; $${s.ephemeral.env})`,
    )
    .option(
      `${s.fsyncIntervalMs.flag} <ms>`,
      `how often the embedded store's log is fsynced, 0 for every change (default 1000; $${s.fsyncIntervalMs.env})`,
    )
    .option(
      `${s.tokensFile.flag} <file>`,
      `YAML/JSON with \`tokens:\` (user and pilot tokens; $${s.tokensFile.env})`,
    )
    .option(`${s.sitesFile.flag} <file>`, `YAML/JSON with \`sites:\` ($${s.sitesFile.env})`)
    .option(
      `${s.sharesFile.flag} <file>`,
      `YAML/JSON with \`fairShare:\` (the grid's shares and user priority rule; $${s.sharesFile.env})`,
    )
    .option(
      `${s.sandboxFile.flag} <file>`,
      `YAML/JSON with \`sandbox:\` (sandbox size limits, retention, storage; $${s.sandboxFile.env})`,
    )
    .option(
      `${s.logLevel.flag} <level>`,
      `trace|debug|info|warn|error|fatal|silent (default info; $${s.logLevel.env})`,
    )
    .option(`${s.publicUrl.flag} <url>`, `the URL pilots reach this node at ($${s.publicUrl.env})`)
    .option(
      s.readRequiresToken.flag,
      `reads (and the monitor) need a user token ($${s.readRequiresToken.env})`,
    )
    .option(`${s.shardCount.flag} <count>`, `shards, fixed per deployment (default 64; $${s.shardCount.env})`)
    .option(
      `${s.leaseMs.flag} <ms>`,
      `how long a dead node's shards wait before another node takes them (default 10000; $${s.leaseMs.env})`,
    )
    .action(async (flags: Record<string, string | boolean>) => {
      const config = resolveServerConfig({
        ...flags,
        redisUrl: flags.redis as string | undefined,
        sitesFile: flags.sites as string | undefined,
        sharesFile: flags.shares as string | undefined,
        sandboxFile: flags.sandboxConfig as string | undefined,
        tokensFile: flags.tokens as string | undefined,
        shardCount: flags.shards as string | undefined,
      });
      const log = createJsonLogger(config.logLevel);
      const node = await startServerNode({
        host: config.host,
        port: config.port,
        dataDir: resolve(config.dataDir),
        ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
        redisPrefix: config.redisPrefix,
        redisWaitReplicas: config.redisWaitReplicas,
        ephemeral: config.ephemeral,
        fsyncIntervalMs: config.fsyncIntervalMs,
        sites: config.sitesFile ? readSitesFile(config.sitesFile) : [],
        ...(config.sharesFile ? { grid: { fairShare: readSharesFile(config.sharesFile) } } : {}),
        tokens: config.tokensFile ? readTokensFile(config.tokensFile) : [],
        ...(config.sandboxFile ? { sandbox: readSandboxFile(config.sandboxFile) } : {}),
        ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
        readRequiresToken: config.readRequiresToken,
        shardCount: config.shardCount,
        leaseMs: config.leaseMs,
        log,
      }).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === "EADDRINUSE")
          throw new CliError(
            EXIT.failed,
            `port ${config.port} is in use: pass ${s.port.flag} N (0 for a free one)`,
          );
        throw err;
      });
      const advice = youngGenerationAdvice();
      if (advice) log.warn({}, advice);
      await new Promise<void>((done) => {
        const stop = () => {
          log.info({ url: node.url }, "stopping");
          node.close().then(done, done);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      log.flush();
    });
}
