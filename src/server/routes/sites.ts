// Routes of `/sites`: list, read, an operator's status change and drain.
import { refs } from "../../actors/shared/names.js";
import { readContext } from "../../workload/context.js";
import { shareUsageAt } from "../../workload/share-usage.js";
import { listSites, readSite } from "../../workload/sites.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { siteView } from "../api-views.js";

export function registerSiteRoutes(host: RouteHost, { grid, pilots }: ApiDeps): void {
  host.on("GET", "sites", async ({ req }) => {
    host.reader(req);
    const sites = await listSites(grid.ctx);
    return { sites: sites.map((s) => siteView(s, pilots.connectedAt(s.name), host.nowMs())) };
  });
  host.on("GET", "sites/:name", async ({ req, params }) => {
    host.reader(req);
    const site = await readSite(grid.ctx, params.name!);
    if (!site) throw notFound(`site ${params.name}`);
    return {
      ...siteView(site, pilots.connectedAt(site.name), host.nowMs()),
      incidents: site.incidents,
      shares: await shareUsageAt(grid.ctx, site.name),
    };
  });
  host.on("POST", "sites/:name/status", async ({ req, params }) => {
    const user = host.withRole(req, ["operator", "admin"], "changing a site's status");
    const body = await host.readBody(schemas.siteStatusBodySchema, req);
    if (!(await readContext(grid.ctx, "site", params.name!))) throw notFound(`site ${params.name}`);
    await grid.runtime.send(refs.site(params.name!), {
      type: "setStatus",
      ...body,
      by: user.user,
      atMs: host.nowMs(),
    });
    return { ok: true, site: params.name, status: body.status };
  });
  host.on("POST", "sites/:name/drain", async ({ req, params }) => {
    const user = host.withRole(req, ["operator", "admin"], "draining a site");
    const { reason } = await host.readBody(schemas.drainBodySchema, req);
    const site = params.name!;
    if (!(await readContext(grid.ctx, "site", site))) throw notFound(`site ${site}`);
    // Recorded first: other nodes' pilots of the site learn of it from the site when they next ask for work.
    await grid.runtime.send(refs.site(site), { type: "drain", by: user.user, reason, atMs: host.nowMs() });
    return { ok: true, site, pilotsTold: pilots.drainSite(site, `${user.user}: ${reason}`) };
  });
}
