// `GET /summary`: PanDA's production job summary per site over a window.
import { listSites } from "../../workload/sites.js";
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { gridSummary } from "../summary.js";

export function registerSummaryRoutes(host: RouteHost, { grid }: ApiDeps): void {
  host.on("GET", "summary", async ({ req, url }) => {
    host.reader(req);
    const { windowMs } = host.parseQuery(schemas.summaryQuerySchema, url);
    return gridSummary(await listSites(grid.ctx), windowMs, host.nowMs());
  });
}
