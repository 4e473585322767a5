// Routes of `/jobs`: list, read (with history and brokerage), why, kill, reassign.
import type { JobContext } from "../../actors/job/schema.js";
import { refs } from "../../actors/shared/names.js";
import { queryJobs } from "../../workload/queries.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { jobView } from "../api-views.js";
import { brokerageOf, explainJob } from "../why.js";
import { kill, reassign } from "./control.js";

export function registerJobRoutes(host: RouteHost, { grid, incidents }: ApiDeps): void {
  host.on("GET", "jobs", async ({ req, url }) => {
    host.reader(req);
    const { jobs, nextOffset } = await queryJobs(grid.ctx, host.parseQuery(schemas.jobsQuerySchema, url));
    return { jobs: jobs.map((j) => jobView(j.state, j.context)), nextOffset };
  });
  host.on("GET", "jobs/:id", async ({ req, params }) => {
    host.reader(req);
    const view = await grid.runtime.inspect(refs.job(params.id!), 200);
    if (!view) throw notFound(`job ${params.id}`);
    const context = view.context as JobContext;
    return {
      job: jobView(view.state, context),
      context,
      history: view.history,
      brokerage: brokerageOf(context, view.history),
    };
  });
  host.on("GET", "jobs/:id/why", async ({ req, params }) => {
    host.reader(req);
    const why = await explainJob(grid.ctx, incidents, params.id!);
    if (!why) throw notFound(`job ${params.id}`);
    return why;
  });
  host.on("POST", "jobs/:id/kill", async ({ req, params }) => kill(host, grid, req, "job", params.id!));
  host.on("POST", "jobs/:id/reassign", async ({ req, params }) =>
    reassign(host, grid, req, "job", params.id!),
  );
}
