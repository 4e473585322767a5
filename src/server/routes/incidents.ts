// Routes of `/incidents`: search the log, and report one (a pilot for its site, or a user).
import type { IncomingMessage } from "node:http";
import type { ApiDeps } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { HttpError } from "../http-util.js";

export function registerIncidentRoutes(host: RouteHost, deps: ApiDeps): void {
  host.on("GET", "incidents", async ({ req, url }) => {
    host.reader(req);
    const query = host.parseQuery(schemas.incidentsQuerySchema, url);
    return {
      incidents: await deps.incidents.search({
        q: query.q,
        site: query.site,
        source: query.source,
        jobId: query.jobId,
        sinceMs: query.since,
        limit: query.limit,
      }),
    };
  });
  host.on("POST", "incidents", async ({ req }) => host.created(await reportIncident(host, deps, req)));
}

/** Pilots report with their site's token (the site is theirs); users and operators with theirs. */
async function reportIncident(host: RouteHost, { tokens, incidents }: ApiDeps, req: IncomingMessage) {
  const principal = tokens.fromRequest(req);
  if (!principal) throw new HttpError(401, "UNAUTHORIZED", "a pilot or user token is required to report");
  const body = await host.readBody(schemas.incidentBodySchema, req);
  const isPilot = principal.kind === "pilot";
  if (isPilot && body.site && body.site !== principal.site)
    throw new HttpError(403, "FORBIDDEN", `a pilot of ${principal.site} cannot report for ${body.site}`);
  return incidents.record({
    atMs: host.nowMs(),
    source: isPilot ? "pilot" : "server",
    level: body.level,
    message: body.message,
    site: isPilot ? principal.site : (body.site ?? null),
    jobId: body.jobId ?? null,
    errorClass: body.errorClass ?? null,
    errorCode: body.errorCode ?? null,
    reporter: isPilot ? (body.pilotId ?? `pilot-token:${principal.tokenId}`) : principal.user,
    details: body.details,
  });
}
