// `GET /pilots`: the pilots connected to this node, with each site's ready threads and dispatch rate.
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";

export function registerPilotRoutes(host: RouteHost, { grid, pilots: view }: ApiDeps): void {
  host.on("GET", "pilots", async ({ req, url }) => {
    host.reader(req);
    const { site } = host.parseQuery(schemas.pilotsQuerySchema, url);
    const pilots = view.connectedPilots().filter((p) => !site || p.site === site);
    const bySite = new Map<string, typeof pilots>();
    for (const pilot of pilots) bySite.set(pilot.site, [...(bySite.get(pilot.site) ?? []), pilot]);
    const sites = [...bySite].map(([name, list]) => ({
      site: name,
      connected: list.length,
      readyThreads: list.reduce((n, p) => n + p.ready.length, 0),
      draining: list.filter((p) => p.draining).length,
      dispatchesPerMin: view.dispatchRatePerMin(name),
    }));
    return { node: grid.runtime.nodeId, pilots, sites };
  });
}
