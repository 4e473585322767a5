// Routes of `/subscriptions`: list and read.
import { readContext } from "../../workload/context.js";
import { querySubscriptions } from "../../workload/queries.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { subscriptionView } from "../api-views.js";

export function registerSubscriptionRoutes(host: RouteHost, { grid }: ApiDeps): void {
  host.on("GET", "subscriptions", async ({ req, url }) => {
    host.reader(req);
    const query = host.parseQuery(schemas.subscriptionsQuerySchema, url);
    const found = await querySubscriptions(grid.ctx, query);
    return { subscriptions: found.map((s) => subscriptionView(s.state, s.context)) };
  });
  host.on("GET", "subscriptions/:id", async ({ req, params }) => {
    host.reader(req);
    const sub = await readContext(grid.ctx, "subscription", params.id!);
    if (!sub) throw notFound(`subscription ${params.id}`);
    return { ...subscriptionView(sub.state, sub.context), files: sub.context.files };
  });
}
