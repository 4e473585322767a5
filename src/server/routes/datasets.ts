// Routes of `/datasets`: search, read, put a file, subscribe a site.
import { readContext } from "../../workload/context.js";
import { queryDatasets } from "../../workload/queries.js";
import { subscribeDataset } from "../../workload/replication.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { datasetView } from "../api-views.js";
import { readBody } from "../http-util.js";

export function registerDatasetRoutes(host: RouteHost, { grid, options }: ApiDeps): void {
  host.on("GET", "datasets", async ({ req, url }) => {
    host.reader(req);
    const found = await queryDatasets(grid.ctx, host.parseQuery(schemas.datasetsQuerySchema, url));
    return {
      datasets: found.map(({ state, context }) => ({
        name: context.name,
        state,
        fileCount: context.fileCount,
        totalBytes: context.totalBytes,
        sites: Object.keys(context.replicas),
      })),
    };
  });
  host.on("GET", "datasets/:name", async ({ req, params }) => {
    host.reader(req);
    const dataset = await readContext(grid.ctx, "dataset", params.name!);
    if (!dataset) throw notFound(`dataset ${params.name}`);
    return datasetView(dataset.state, dataset.context);
  });
  host.on("POST", "datasets/:name/files", async ({ req, url, params }) => {
    host.user(req);
    const { site, lfn } = host.parseQuery(schemas.putFileQuerySchema, url);
    const bytes = await readBody(req, options.maxUploadBytes);
    const checksum = req.headers["x-panda-checksum"];
    const [file] = await grid.putFiles(params.name!, site, [
      { lfn, bytes, ...(typeof checksum === "string" ? { checksum } : {}) },
    ]);
    return host.created(file);
  });
  host.on("POST", "datasets/:name/subscriptions", async ({ req, params }) => {
    host.user(req);
    const { site } = await host.readBody(schemas.subscribeBodySchema, req);
    const answer = await subscribeDataset(grid.ctx, params.name!, site);
    return answer.created ? host.created(answer) : answer;
  });
}
