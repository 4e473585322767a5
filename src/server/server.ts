import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { z } from "zod";
import { siteInputSchema } from "../actors/site/schema.js";
import { PilotGateway } from "../gateway/gateway.js";
import type { GatewayLimits } from "../gateway/options.js";
import type { SamplerOptions } from "../monitor/sampler.js";
import { validate } from "../protocol/codec.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { MemoryQueueIndex } from "../store/memory-queue-index.js";
import { MemoryStore } from "../store/memory-store.js";
import { RedisQueueIndex } from "../store/redis-queue-index.js";
import { RedisStore } from "../store/redis-store.js";
import { createStorageHandler } from "../transfer/storage-http.js";
import { Grid, type GridConfig } from "../workload/grid.js";
import { ApiSurface } from "./api-surface.js";
import { Dispatcher } from "./dispatcher.js";
import { HttpError, sendError, sendJson } from "./http-util.js";
import { LiveEvents } from "./live-events.js";
import { MonitorApi } from "./monitor-api.js";
import { serveMonitor } from "./monitor-page.js";
import { PilotBundleRoute } from "./pilot-bundle.js";
import { type TokenConfig, TokenRegistry, tokenConfigSchema } from "./tokens.js";

export const serverNodeOptionsSchema = z.object({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65_535).default(8080),
  /** Storage elements and the resume secret live here. */
  dataDir: z.string().min(1),
  /** Durable on Redis; the embedded store otherwise. */
  redisUrl: z.string().optional(),
  redisPrefix: z.string().default("panda"),
  sites: z.array(siteInputSchema.omit({ atMs: true })).default([]),
  tokens: z.array(tokenConfigSchema).default([]),
  /** The URL pilots reach this node at, when it differs from the listening address. */
  publicUrl: z.string().optional(),
  heartbeatMs: z.number().int().positive().default(30_000),
  pingIntervalMs: z.number().int().positive().default(15_000),
  shardCount: z.number().int().min(1).max(4096).default(64),
  /** How long a dead node's shards stay unowned before another node takes them. */
  leaseMs: z.number().int().positive().default(10_000),
  maxActiveJobsPerUser: z.number().int().positive().default(10_000),
  shortAnalysisWalltimeSec: z.number().int().positive().default(3600),
  maxUploadBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  /** API reads (and so the monitor) need a user token; by default they are open, read-only. */
  readRequiresToken: z.boolean().default(false),
});
export type ServerNodeOptions = z.input<typeof serverNodeOptionsSchema> & {
  log?: Logger;
  grid?: Partial<GridConfig>;
  /** Gateway limits beyond heartbeat and ping (frame rate, buffers, ...); the gateway's defaults otherwise. */
  gateway?: Partial<GatewayLimits>;
  /** How often the monitor samples its charts and how many samples it keeps. */
  monitorSampler?: SamplerOptions;
};

export interface ServerNode {
  url: string;
  grid: Grid;
  dispatcher: Dispatcher;
  gateway: PilotGateway;
  http: Server;
  close(): Promise<void>;
}

/** A secret shared by every node on the same data: resume and pilot-job tokens verify anywhere and after restarts. */
function sharedSecret(dataDir: string, name: "resume-secret" | "pilot-job-secret"): Buffer {
  const path = join(dataDir, name);
  try {
    return readFileSync(path);
  } catch {
    const secret = randomBytes(32);
    writeFileSync(path, secret, { mode: 0o600 });
    return secret;
  }
}

/**
 * One server node: the grid (runtime + workload services), the pilot gateway
 * and dispatcher, the HTTP API, storage and the monitor, on one port.
 */
export async function startServerNode(raw: ServerNodeOptions): Promise<ServerNode> {
  const options = validate(serverNodeOptionsSchema, raw, "server options");
  const log = raw.log ?? silentLogger;
  mkdirSync(options.dataDir, { recursive: true });
  const redis = options.redisUrl ? new Redis(options.redisUrl, { enableAutoPipelining: true }) : null;
  const store = redis ? new RedisStore({ client: redis, prefix: options.redisPrefix }) : new MemoryStore();
  const index = redis ? new RedisQueueIndex(redis, options.redisPrefix) : new MemoryQueueIndex();
  const grid = new Grid({
    store,
    index,
    storageRoot: join(options.dataDir, "storage"),
    config: { ...raw.grid, sites: options.sites, maxActiveJobsPerUser: options.maxActiveJobsPerUser },
    runtime: { shardCount: options.shardCount, leaseMs: options.leaseMs },
    log,
  });
  // Tokens created through the API are kept (hashed) in the data directory and survive restarts.
  const tokens = new TokenRegistry(
    options.tokens as TokenConfig[],
    join(options.dataDir, "tokens.json"),
    sharedSecret(options.dataDir, "pilot-job-secret"),
  );
  let publicUrl = options.publicUrl ?? "";
  const dispatcher = new Dispatcher(grid, tokens, {
    get publicUrl() {
      return publicUrl;
    },
    shortAnalysisWalltimeSec: options.shortAnalysisWalltimeSec,
    idlePollMs: 1000,
    log,
  });
  const apiSurface = new ApiSurface(grid, dispatcher, tokens, log, {
    maxJsonBytes: 4 * 1024 * 1024,
    maxUploadBytes: options.maxUploadBytes,
    readRequiresToken: options.readRequiresToken,
  });
  const gateway = new PilotGateway({
    ...raw.gateway,
    handlers: dispatcher,
    resumeSecret: sharedSecret(options.dataDir, "resume-secret"),
    heartbeatMs: options.heartbeatMs,
    pingIntervalMs: options.pingIntervalMs,
    log,
  });
  const storage = createStorageHandler({
    elements: grid.ctx.storage,
    maxPutBytes: options.maxUploadBytes,
    authorize: (req, site, operation) => {
      const principal = tokens.fromRequest(req);
      if (!principal) return false;
      // Pilots write only to their own site's storage; users read anything and write through the API.
      if (principal.kind === "pilot") return principal.site === site;
      return operation === "read";
    },
    onInternalError: (err) => log.error({ err: (err as Error).message }, "storage request failed"),
  });
  const mayRead = (req: IncomingMessage) =>
    !options.readRequiresToken || tokens.fromRequest(req)?.kind === "user";
  const live = new LiveEvents((listener) => grid.runtime.onTransitions(listener), {}, mayRead);
  const monitor = new MonitorApi(grid, () => dispatcher.connectedPilots(), mayRead, raw.monitorSampler);
  const pilotBundle = new PilotBundleRoute();
  const onError = (err: unknown) => {
    log.error({ err: (err as Error).message }, "request failed");
    apiSurface.recordServerError(err, "request failed");
  };
  const http = createServer((req, res) => {
    try {
      if (storage(req, res) || pilotBundle.handle(req, res)) return;
      if (live.handle(req, res) || monitor.handle(req, res, onError)) return;
      if (apiSurface.handle(req, res, onError)) return;
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/healthz")
        return sendJson(res, 200, {
          ok: true,
          node: grid.runtime.nodeId,
          shards: grid.runtime.ownedShards().length,
        });
      if (serveMonitor(req, res)) return;
      sendError(res, new HttpError(404, "NOT_FOUND", `no route ${req.method} ${path}`));
    } catch (err) {
      onError(err);
      sendError(res, new HttpError(500, "INTERNAL", "internal error"));
    }
  });
  http.on("upgrade", (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await grid.start();
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, options.host, () => resolve());
  });
  const address = http.address() as AddressInfo;
  const url = `http://${options.host}:${address.port}`;
  publicUrl = options.publicUrl ?? url;
  log.info({ url, store: store.name }, "server node listening");
  return {
    url,
    grid,
    dispatcher,
    gateway,
    http,
    async close() {
      live.close();
      monitor.close();
      apiSurface.close();
      dispatcher.close();
      await gateway.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      await grid.stop();
      await store.close();
      redis?.disconnect();
    },
  };
}
