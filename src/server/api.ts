/**
 * The JSON API under `/api/v1`: the route table, errors as HTTP answers, and
 * the wiring of one route file per resource (`routes/`); docs/api.md lists
 * every route with its costs.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isRuntimeError, type RuntimeError } from "../runtime/errors.js";
import { isStorageError } from "../transfer/storage-element.js";
import { WorkloadError } from "../workload/errors.js";
import type { Grid } from "../workload/grid.js";
import type { IncidentLog } from "../workload/incident-log.js";
import { ApiAccess } from "./api-access.js";
import { Created, type Handler, matchPath, parseWith, type RouteHost } from "./api-routing.js";
import { registerFactoryRoutes } from "./factory-api.js";
import { HttpError, readJson, sendError, sendJson } from "./http-util.js";
import type { PilotRegistry } from "./pilot-registry.js";
import { registerActorRoutes } from "./routes/actors.js";
import { registerDatasetRoutes } from "./routes/datasets.js";
import { registerIncidentRoutes } from "./routes/incidents.js";
import { registerJobRoutes } from "./routes/jobs.js";
import { registerMonitoringRoutes } from "./routes/monitoring.js";
import { registerPilotRoutes } from "./routes/pilots.js";
import { registerSandboxRoutes } from "./routes/sandboxes.js";
import { registerSiteRoutes } from "./routes/sites.js";
import { registerSubscriptionRoutes } from "./routes/subscriptions.js";
import { registerSummaryRoutes } from "./routes/summary.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { registerTokenRoutes } from "./routes/tokens.js";
import type { TokenRegistry } from "./tokens.js";

const DEFAULT_MAX_CONTROL_JSON_BYTES = 64 * 1024;

export interface ApiOptions {
  /** A task submission's body, the largest JSON the API takes. */
  maxJsonBytes: number;
  /** Every other JSON body (a status, a kill, a token, an incident, a factory report); default 64 KiB. */
  maxControlJsonBytes?: number;
  maxUploadBytes: number;
  /** Reads need a user token too (the monitor then needs one); by default anyone may read. */
  readRequiresToken?: boolean;
}

/** What the API reads of the dispatcher and the metrics: this node's pilots and dispatch rates. */
export interface PilotView {
  connectedPilots(): { pilotId: string; site: string; ready: string[]; draining: boolean }[];
  connectedAt(site: string): number;
  dispatchRatePerMin(site: string): number;
  /** Tells the site's pilots on this node to finish their work and exit; how many were told. */
  drainSite(site: string, reason: string): number;
}

export interface ApiDeps {
  grid: Grid;
  tokens: TokenRegistry;
  pilots: PilotView;
  /** Every node's pilots, for the routes that answer for the whole grid. */
  registry: PilotRegistry;
  incidents: IncidentLog;
  options: ApiOptions;
}

const STATUS_BY_RUNTIME_CODE: Partial<Record<RuntimeError["code"], number>> = {
  UNKNOWN_KIND: 404,
  BAD_ACTOR_REF: 400,
  BAD_EVENT: 400,
  ACTOR_NOT_FOUND: 404,
  EVENT_NOT_ACCEPTED: 409,
  ACTOR_EXISTS: 409,
};

const STATUS_BY_WORKLOAD_CODE: Record<WorkloadError["code"], number> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  DATASET_NOT_FOUND: 404,
  DATASET_EMPTY: 409,
  DATASET_FROZEN: 409,
  CONFLICT: 409,
  FORBIDDEN: 403,
};

/** Maps every known failure to an HTTP answer; anything else is a 500 whose details stay in the log. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof WorkloadError)
    return new HttpError(STATUS_BY_WORKLOAD_CODE[err.code], err.code, err.message, err.details);
  if (isRuntimeError(err))
    return new HttpError(STATUS_BY_RUNTIME_CODE[err.code] ?? 500, err.code, err.message, err.details);
  if (isStorageError(err)) {
    const status =
      err.code === "BAD_PATH" ? 400 : err.code === "NOT_FOUND" ? 404 : err.code === "TOO_LARGE" ? 413 : 422;
    return new HttpError(status, err.code, err.message);
  }
  return new HttpError(500, "INTERNAL", "internal error");
}

/** The JSON API under `/api/v1`; docs/api.md lists every route with its costs. */
export class Api {
  private readonly routes: { method: string; pattern: string[]; handler: Handler }[] = [];

  constructor(deps: ApiDeps) {
    const access = new ApiAccess(deps.tokens, deps.options.readRequiresToken ?? false);
    const maxControlJsonBytes = deps.options.maxControlJsonBytes ?? DEFAULT_MAX_CONTROL_JSON_BYTES;
    const host: RouteHost = {
      on: (method, path, handler) =>
        this.routes.push({ method, pattern: path.split("/").filter(Boolean), handler }),
      reader: (req) => access.reader(req),
      user: (req) => access.user(req),
      withRole: (req, roles, what) => access.withRole(req, roles, what),
      parseBody: (schema, value) => parseWith(schema, value, "body"),
      readBody: async (schema, req) => parseWith(schema, await readJson(req, maxControlJsonBytes), "body"),
      parseQuery: (schema, url) => parseWith(schema, Object.fromEntries(url.searchParams), "query"),
      created: (body) => new Created(body),
      nowMs: () => deps.grid.runtime.clock.nowMs(),
    };
    host.on("GET", "whoami", async ({ req }) => ({ principal: host.reader(req) }));
    registerTaskRoutes(host, deps);
    registerJobRoutes(host, deps);
    registerActorRoutes(host, deps);
    registerSiteRoutes(host, deps);
    registerPilotRoutes(host, deps);
    registerDatasetRoutes(host, deps);
    registerSubscriptionRoutes(host, deps);
    registerSummaryRoutes(host, deps);
    registerMonitoringRoutes(host, deps);
    registerIncidentRoutes(host, deps);
    registerFactoryRoutes(host, {
      grid: deps.grid,
      tokens: deps.tokens,
      incidents: deps.incidents,
      idleThreads: (site) =>
        deps.pilots
          .connectedPilots()
          .filter((p) => p.site === site && !p.draining)
          .reduce((n, p) => n + p.ready.length, 0),
    });
    registerTokenRoutes(host, deps);
    registerSandboxRoutes(host, deps.grid.ctx.sandboxes);
  }

  /** Handles `/api/v1/...`; false when the path is not the API's. */
  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith("/api/v1/")) return false;
    this.dispatch(req, url)
      .then(([status, body]) => sendJson(res, status, body))
      .catch((err: unknown) => {
        const httpError = toHttpError(err);
        if (httpError.status >= 500) onError(err);
        sendError(res, httpError);
      });
    return true;
  }

  private async dispatch(req: IncomingMessage, url: URL): Promise<[number, unknown]> {
    const parts = url.pathname.slice("/api/v1/".length).split("/").filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? "GET";
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchPath(route.pattern, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const answer = await route.handler({ req, url, params });
      return answer instanceof Created ? [201, answer.body] : [200, answer];
    }
    if (pathMatched)
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed on ${url.pathname}`);
    throw new HttpError(404, "NOT_FOUND", `no route ${method} ${url.pathname}`);
  }
}
