// `GET /pilots`: every node's pilots (the shared registry), each site's ready threads and dispatch rate, and every site's pilot request rate.
import { pilotRequestsInWindow } from "../../actors/site/stats.js";
import { listSites } from "../../workload/sites.js";
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";

export function registerPilotRoutes(host: RouteHost, { grid, registry }: ApiDeps): void {
  host.on("GET", "pilots", async ({ req, url }) => {
    host.reader(req);
    const { site, minRequestsPerMin } = host.parseQuery(schemas.pilotsQuerySchema, url);
    const pilots = registry.pilots().filter((p) => !site || p.site === site);
    const bySite = new Map<string, typeof pilots>();
    for (const pilot of pilots) bySite.set(pilot.site, [...(bySite.get(pilot.site) ?? []), pilot]);
    const sites = [...bySite].map(([name, list]) => ({
      site: name,
      connected: list.length,
      readyThreads: list.reduce((n, p) => n + p.ready.length, 0),
      draining: list.filter((p) => p.draining).length,
      dispatchesPerMin: registry.dispatchRatePerMin(name),
    }));
    // Read from the site actors, which count every node's pilot requests.
    const nowMs = host.nowMs();
    const requestRates = (await listSites(grid.ctx))
      .filter((s) => !site || s.name === site)
      .map((s) => {
        const perMin = pilotRequestsInWindow(s, nowMs) / (s.thresholds.pilotWindowMs / 60_000);
        return {
          site: s.name,
          status: s.status,
          requestsPerMin: Math.round(perMin * 100) / 100,
          windowMs: s.thresholds.pilotWindowMs,
          lastSeenAtMs: s.pilots.lastSeenAtMs,
          connected: bySite.get(s.name)?.length ?? 0,
          below: perMin < minRequestsPerMin,
        };
      });
    return {
      node: grid.runtime.nodeId,
      nodes: registry.nodes(),
      minRequestsPerMin,
      pilots,
      sites,
      requestRates,
    };
  });
}
