/**
 * One server node: the grid (runtime + workload services), the pilot gateway
 * and dispatcher, the HTTP API, storage and the monitor, on one port.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { z } from "zod";
import { PilotGateway } from "../gateway/gateway.js";
import type { GatewayLimits } from "../gateway/options.js";
import type { SamplerOptions } from "../monitor/sampler.js";
import { validate } from "../protocol/codec.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { defaultSandboxDir, sandboxElementFrom, serverSandboxSchema } from "../sandbox/sandbox-element.js";
import { SandboxStore } from "../sandbox/sandbox-store.js";
import { startSandboxSweep } from "../sandbox/sandbox-sweep.js";
import { markSandboxesOfSentJobs } from "../sandbox/sandbox-use.js";
import { DEFAULT_FSYNC_INTERVAL_MS, DurableStore } from "../store/durable-store.js";
import { MemoryQueueIndex } from "../store/memory-queue-index.js";
import { MemoryStore } from "../store/memory-store.js";
import type { QueueIndex } from "../store/queue-index.js";
import { RedisQueueIndex } from "../store/redis-queue-index.js";
import { DEFAULT_REPLICA_WAIT_TIMEOUT_MS } from "../store/redis-replica-wait.js";
import { RedisStore } from "../store/redis-store.js";
import type { Store } from "../store/types.js";
import type { StorageElement } from "../transfer/storage-element.js";
import { createStorageHandler } from "../transfer/storage-http.js";
import { readContext } from "../workload/context.js";
import { Grid, type GridConfig } from "../workload/grid.js";
import { gridSiteSchema } from "../workload/grid-site.js";
import { ApiSurface } from "./api-surface.js";
import { type CreatedTokenStore, FileCreatedTokens, RedisCreatedTokens } from "./created-tokens.js";
import { Dispatcher } from "./dispatcher.js";
import { HttpError, sendError, sendJson } from "./http-util.js";
import { LiveEvents } from "./live-events.js";
import { MonitorApi } from "./monitor-api.js";
import { serveMonitor } from "./monitor-page.js";
import { LocalNodeBus, type NodeBus, RedisNodeBus } from "./node-bus.js";
import { PilotBundleRoute } from "./pilot-bundle.js";
import type { PilotRegistryOptions } from "./pilot-registry.js";
import { connectRedis } from "./redis-connection.js";
import { createSandboxHandler } from "./routes/sandboxes.js";
import { type SecretName, secretInDataDir, secretOnRedis } from "./shared-secrets.js";
import { type TokenConfig, TokenRegistry, tokenConfigSchema } from "./tokens.js";

export const serverNodeOptionsSchema = z
  .object({
    host: z.string().default("127.0.0.1"),
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Storage elements and the resume secret live here. */
    dataDir: z.string().min(1),
    /**
     * State in Redis or a Redis Cluster: one URL, or several (comma-separated
     * seeds of a Cluster); the embedded store otherwise.
     */
    redisUrl: z.string().optional(),
    redisPrefix: z.string().default("panda"),
    /**
     * On Redis with replicas: every write is answered only once this many
     * replicas have it (WAIT after each write script), so a failover loses no
     * acknowledged transition. 0: Redis's asynchronous replication.
     */
    redisWaitReplicas: z.number().int().min(0).max(16).default(0),
    /** How long such a WAIT blocks; a write with fewer replicas by then fails and is retried. */
    redisWaitTimeoutMs: z.number().int().positive().max(60_000).default(DEFAULT_REPLICA_WAIT_TIMEOUT_MS),
    /**
     * The embedded store in memory only: its state, and the storage beside it
     * (`<dataDir>/ephemeral`), are gone when the node stops. For tests and
     * simulations; by default the embedded store is durable in `<dataDir>/state`.
     */
    ephemeral: z.boolean().default(false),
    /** How often the durable embedded store fsyncs its log: a machine crash loses at most this much. 0: every change. */
    fsyncIntervalMs: z.number().int().nonnegative().default(DEFAULT_FSYNC_INTERVAL_MS),
    sites: z.array(gridSiteSchema).default([]),
    tokens: z.array(tokenConfigSchema).default([]),
    /** The URL pilots reach this node at, when it differs from the listening address. */
    publicUrl: z.string().optional(),
    heartbeatMs: z.number().int().positive().default(30_000),
    /**
     * How often a pilot thread waiting for work looks at its site's queues on
     * other nodes' shards: the safety net under the nodes' notices, which
     * tell at once (see `NodeBus`).
     */
    idlePollMs: z.number().int().positive().default(1000),
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
    /** Users' sandboxes: size limits, retention, and the storage element they are kept on. */
    sandbox: serverSandboxSchema.prefault({}),
  })
  .refine((o) => o.redisWaitReplicas === 0 || o.redisUrl, {
    path: ["redisWaitReplicas"],
    message: "waits for Redis replicas: it needs redisUrl",
  })
  .refine((o) => !(o.ephemeral && o.redisUrl), {
    path: ["ephemeral"],
    message: "ephemeral keeps the embedded store in memory: it does not go with redisUrl",
  });
export type ServerNodeOptions = z.input<typeof serverNodeOptionsSchema> & {
  log?: Logger;
  grid?: Partial<GridConfig>;
  /** Gateway limits beyond heartbeat and ping (frame rate, buffers, ...); the gateway's defaults otherwise. */
  gateway?: Partial<GatewayLimits>;
  /** How often the monitor samples its charts and how many samples it keeps. */
  monitorSampler?: SamplerOptions;
  /** How often this node publishes its pilots for the others and reads theirs. */
  pilotRegistry?: PilotRegistryOptions;
  /** The storage element sandboxes are kept on, instead of the one `sandbox.storage` configures. */
  sandboxElement?: StorageElement;
};

export interface ServerNode {
  url: string;
  grid: Grid;
  dispatcher: Dispatcher;
  gateway: PilotGateway;
  /** The monitor's live stream of this node's and, relayed, every other node's commits. */
  live: LiveEvents;
  http: Server;
  close(): Promise<void>;
}

/**
 * How long a node gathers delivered effects' acknowledgements before it
 * removes them from the outboxes in one call (`RuntimeOptions.ackOutboxAfterMs`):
 * on Redis each shard in a call costs two commands, and acknowledgements
 * gathered for a quarter second touch about two thirds as many shards per job
 * as those of one turn of the event loop (bench:dispatch).
 */
const ACK_OUTBOX_AFTER_MS = 250;

interface NodeState {
  store: Store;
  index: QueueIndex;
  storageRoot: string;
  /** The secrets every node of the deployment shares (see `shared-secrets.ts`). */
  secret(name: SecretName): Promise<Buffer>;
  /** Notices to the other nodes of the grid. */
  bus: NodeBus;
  /** Tokens created through the API, kept where every node of the deployment reads them. */
  createdTokens: CreatedTokenStore;
  /** What else `close` lets go of. */
  release(): void;
}

/**
 * Where the node keeps its state: Redis; the durable embedded store in
 * `<dataDir>/state` beside the storage it owns in `<dataDir>/storage`; or,
 * ephemeral, memory with storage of its own that goes with it, so that no run
 * sees files left by a state that is gone.
 */
async function openState(options: z.output<typeof serverNodeOptionsSchema>, log: Logger): Promise<NodeState> {
  const fromDataDir = async (name: SecretName) => secretInDataDir(options.dataDir, name);
  if (options.redisUrl) {
    const { client } = await connectRedis(options.redisUrl, log);
    const bus = new RedisNodeBus(client, options.redisPrefix, log);
    const createdTokens = await RedisCreatedTokens.open({
      client,
      prefix: options.redisPrefix,
      bus,
      log,
    }).catch(async (err: unknown) => {
      await bus.close();
      client.disconnect();
      throw err;
    });
    return {
      store: new RedisStore({
        client,
        prefix: options.redisPrefix,
        ...(options.redisWaitReplicas > 0
          ? { replicaWait: { replicas: options.redisWaitReplicas, timeoutMs: options.redisWaitTimeoutMs } }
          : {}),
      }),
      index: new RedisQueueIndex(client, options.redisPrefix),
      storageRoot: join(options.dataDir, "storage"),
      secret: (name) => secretOnRedis(client, options.redisPrefix, name, options.dataDir),
      bus,
      createdTokens,
      release: () => client.disconnect(),
    };
  }
  if (options.ephemeral) {
    const root = join(options.dataDir, "ephemeral");
    rmSync(root, { recursive: true, force: true });
    return {
      store: new MemoryStore(),
      index: new MemoryQueueIndex(),
      storageRoot: join(root, "storage"),
      secret: fromDataDir,
      bus: new LocalNodeBus(),
      createdTokens: new FileCreatedTokens(join(options.dataDir, "tokens.json")),
      release: () => rmSync(root, { recursive: true, force: true }),
    };
  }
  const durable = DurableStore.open({
    dir: join(options.dataDir, "state"),
    fsyncIntervalMs: options.fsyncIntervalMs,
    log,
  });
  const storageRoot = join(options.dataDir, "storage");
  if (durable.fresh) setAsideOrphanedStorage(storageRoot, log);
  return {
    store: durable,
    index: durable.index,
    storageRoot,
    secret: fromDataDir,
    bus: new LocalNodeBus(),
    createdTokens: new FileCreatedTokens(join(options.dataDir, "tokens.json")),
    release() {},
  };
}

/**
 * A new state with files already in storage (left by an in-memory run, or
 * the state directory deleted): no dataset owns them, so they move aside
 * rather than show up as files of nothing.
 */
function setAsideOrphanedStorage(storageRoot: string, log: Logger): void {
  // Site directories are made empty at every start: only files count.
  if (!existsSync(storageRoot)) return;
  if (!readdirSync(storageRoot, { recursive: true, withFileTypes: true }).some((e) => e.isFile())) return;
  const aside = `${storageRoot}-orphaned-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  renameSync(storageRoot, aside);
  log.warn({ storageRoot, movedTo: aside }, "storage held files that no state owns: moved aside");
}

export async function startServerNode(raw: ServerNodeOptions): Promise<ServerNode> {
  const options = validate(serverNodeOptionsSchema, raw, "server options");
  const log = raw.log ?? silentLogger;
  mkdirSync(options.dataDir, { recursive: true });
  const state = await openState(options, log);
  const [pilotJobSecret, resumeSecret] = await Promise.all([
    state.secret("pilot-job-secret"),
    state.secret("resume-secret"),
  ]);
  const { store, index } = state;
  const grid = new Grid({
    store,
    index,
    storageRoot: state.storageRoot,
    config: { ...raw.grid, sites: options.sites, maxActiveJobsPerUser: options.maxActiveJobsPerUser },
    runtime: {
      shardCount: options.shardCount,
      leaseMs: options.leaseMs,
      ackOutboxAfterMs: ACK_OUTBOX_AFTER_MS,
    },
    log,
  });
  const sandboxes = new SandboxStore(
    raw.sandboxElement ??
      sandboxElementFrom(options.sandbox.storage, defaultSandboxDir(dirname(state.storageRoot))),
    index,
    options.sandbox,
  );
  grid.attachSandboxStore(sandboxes);
  // Tokens created through the API are kept (hashed) with the state, so they survive restarts and open every node.
  const tokens = new TokenRegistry(options.tokens as TokenConfig[], state.createdTokens, pilotJobSecret);
  let publicUrl = options.publicUrl ?? "";
  const dispatcher = new Dispatcher(grid, tokens, {
    get publicUrl() {
      return publicUrl;
    },
    shortAnalysisWalltimeSec: options.shortAnalysisWalltimeSec,
    idlePollMs: options.idlePollMs,
    bus: state.bus,
    log,
  });
  const apiSurface = new ApiSurface(
    grid,
    dispatcher,
    tokens,
    log,
    {
      maxJsonBytes: 4 * 1024 * 1024,
      maxUploadBytes: options.maxUploadBytes,
      readRequiresToken: options.readRequiresToken,
    },
    raw.pilotRegistry,
  );
  const gateway = new PilotGateway({
    ...raw.gateway,
    handlers: dispatcher,
    resumeSecret,
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
  const sandboxHttp = createSandboxHandler({
    store: sandboxes,
    tokens,
    nowMs: () => grid.runtime.clock.nowMs(),
    onInternalError: (err) => log.error({ err: (err as Error).message }, "sandbox request failed"),
    buildJob: async (site, jobId, attempt) => {
      const job = await readContext(grid.ctx, "job", jobId);
      const running = job && ["sent", "starting", "running"].includes(job.state);
      if (!running || !job.context.payload?.producesSandbox) return null;
      if (job.context.site !== site || job.context.attempt !== attempt) return null;
      return { user: job.context.user, taskId: job.context.taskId };
    },
  });
  const stopSandboxSweep = startSandboxSweep(sandboxes, () => grid.runtime.clock.nowMs(), log);
  const stopSandboxUse = markSandboxesOfSentJobs(
    grid.runtime,
    sandboxes,
    () => grid.runtime.clock.nowMs(),
    log,
  );
  const mayRead = (req: IncomingMessage) =>
    !options.readRequiresToken || tokens.fromRequest(req)?.kind === "user";
  const live = new LiveEvents((listener) => grid.runtime.onTransitions(listener), {}, mayRead, {
    bus: state.bus,
    nodeId: grid.runtime.nodeId,
    alone: () => grid.runtime.ownsAllShards(),
  });
  const monitor = new MonitorApi(grid, () => apiSurface.pilots.pilots(), mayRead, raw.monitorSampler);
  const pilotBundle = new PilotBundleRoute();
  const onError = (err: unknown) => {
    log.error({ err: (err as Error).message }, "request failed");
    apiSurface.recordServerError(err, "request failed");
  };
  const http = createServer((req, res) => {
    try {
      if (storage(req, res) || sandboxHttp(req, res) || pilotBundle.handle(req, res)) return;
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
  const stopServices = async () => {
    stopSandboxSweep();
    stopSandboxUse();
    live.close();
    monitor.close();
    await apiSurface.close();
    // Before the gateway closes the sessions: a dispatch on its way must reach its pilot.
    await dispatcher.close();
    state.createdTokens.close();
    await state.bus.close();
    await gateway.close();
  };
  const stopGrid = async () => {
    await grid.stop();
    await store.close();
    state.release();
  };
  try {
    await grid.start();
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(options.port, options.host, () => resolve());
    });
  } catch (err) {
    // Not started (the port taken, say): let go of the state, so the next try can open it.
    await stopServices();
    await stopGrid();
    throw err;
  }
  const address = http.address() as AddressInfo;
  const url = `http://${options.host}:${address.port}`;
  publicUrl = options.publicUrl ?? url;
  log.info({ url, store: store.name }, "server node listening");
  let closing: Promise<void> | null = null;
  return {
    url,
    grid,
    dispatcher,
    gateway,
    live,
    http,
    close() {
      // Once: a drain (SIGTERM) and a caller's own cleanup may both ask.
      closing ??= (async () => {
        await stopServices();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        await stopGrid();
      })();
      return closing;
    },
  };
}
