// `GET /job-summary` and `GET /errors`: the shifter's per-site job summary and failures by class and code.
import { listSites } from "../../workload/sites.js";
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { errorSummary } from "../error-summary.js";
import { jobSummary, liveAnalysisJobs } from "../job-summary.js";

export function registerMonitoringRoutes(host: RouteHost, { grid }: ApiDeps): void {
  host.on("GET", "job-summary", async ({ req, url }) => {
    host.reader(req);
    const { hours } = host.parseQuery(schemas.jobSummaryQuerySchema, url);
    const [sites, analysis] = await Promise.all([listSites(grid.ctx), liveAnalysisJobs(grid.runtime)]);
    return jobSummary(sites, analysis, hours, host.nowMs());
  });
  host.on("GET", "errors", async ({ req, url }) => {
    host.reader(req);
    const { site } = host.parseQuery(schemas.errorsQuerySchema, url);
    const sites = (await listSites(grid.ctx)).filter((s) => !site || s.name === site);
    return errorSummary(sites, host.nowMs());
  });
}
