/**
 * The node's API side in one piece: the JSON API, `/metrics` and the
 * incident log (the grid's, which the actors' incidents reach as effects),
 * so the server wires one thing and closes one thing.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../runtime/logger.js";
import type { Grid } from "../workload/grid.js";
import type { IncidentLog } from "../workload/incident-log.js";
import { Api, type ApiOptions } from "./api.js";
import type { Dispatcher } from "./dispatcher.js";
import { NodeMetrics } from "./metrics.js";
import { PilotRegistry, type PilotRegistryOptions } from "./pilot-registry.js";
import type { TokenRegistry } from "./tokens.js";

export class ApiSurface {
  readonly api: Api;
  readonly metrics: NodeMetrics;
  readonly incidents: IncidentLog;
  /** Every node's pilots (this node publishes its own). */
  readonly pilots: PilotRegistry;

  constructor(
    private readonly grid: Grid,
    dispatcher: Dispatcher,
    tokens: TokenRegistry,
    private readonly log: Logger,
    options: ApiOptions,
    pilotRegistryOptions?: PilotRegistryOptions,
  ) {
    this.incidents = grid.incidents;
    this.metrics = new NodeMetrics(grid, dispatcher);
    const metrics = this.metrics;
    this.pilots = new PilotRegistry(
      grid.ctx.index,
      grid.runtime.nodeId,
      grid.runtime.clock,
      {
        pilots: () => dispatcher.connectedPilots(),
        dispatchRatePerMin: (site) => metrics.dispatchRatePerMin(site),
      },
      log,
      pilotRegistryOptions,
    );
    this.pilots.start();
    this.api = new Api({
      grid,
      tokens,
      incidents: this.incidents,
      options,
      registry: this.pilots,
      pilots: {
        connectedPilots: () => dispatcher.connectedPilots(),
        connectedAt: (site) => dispatcher.connectedAt(site),
        dispatchRatePerMin: (site) => metrics.dispatchRatePerMin(site),
        drainSite: (site, reason) => dispatcher.drainSite(site, reason),
      },
    });
  }

  /** `/api/v1/...` and `/metrics`; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void): boolean {
    if (this.api.handle(req, res, onError)) return true;
    if ((req.url ?? "/").split("?")[0] !== "/metrics" || req.method !== "GET") return false;
    this.metrics.render().then(
      (text) => {
        res.writeHead(200, { "content-type": this.metrics.contentType });
        res.end(text);
      },
      (err: unknown) => {
        onError(err);
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("metrics collection failed\n");
      },
    );
    return true;
  }

  /** A server error also goes to the incident log, where operators search for it. */
  recordServerError(err: unknown, where: string): void {
    this.incidents
      .record({
        atMs: this.grid.runtime.clock.nowMs(),
        source: "server",
        level: "error",
        message: `${where}: ${(err as Error)?.message ?? String(err)}`,
        site: null,
        jobId: null,
        errorClass: "system",
        errorCode: null,
        reporter: "server",
        details: {},
      })
      .catch((recordErr: unknown) =>
        this.log.warn({ err: (recordErr as Error).message }, "incident not recorded"),
      );
  }

  async close(): Promise<void> {
    this.metrics.close();
    await this.pilots.close();
  }
}
