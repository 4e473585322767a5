// Routes of `/tasks`: list, submit, read, kill, retry, reassign.

import { readContext } from "../../workload/context.js";
import { queryTasks } from "../../workload/queries.js";
import { retryFailedJobs } from "../../workload/task-retry.js";
import type { ApiDeps } from "../api.js";
import { notFound, type RouteHost } from "../api-routing.js";
import * as schemas from "../api-schemas.js";
import { taskView } from "../api-views.js";
import { readJson } from "../http-util.js";
import { kill, ownerOrOperator, reassign } from "./control.js";

export function registerTaskRoutes(host: RouteHost, { grid, options }: ApiDeps): void {
  host.on("GET", "tasks", async ({ req, url }) => {
    host.reader(req);
    const { tasks, nextOffset } = await queryTasks(grid.ctx, host.parseQuery(schemas.tasksQuerySchema, url));
    return { tasks: tasks.map((t) => taskView(t.state, t.context)), nextOffset };
  });
  host.on("POST", "tasks", async ({ req }) => {
    const user = host.user(req);
    // A submission may carry many jobs' input: the API's largest body.
    const body = await readJson(req, options.maxJsonBytes);
    return host.created(await grid.submit(body, user.user));
  });
  host.on("GET", "tasks/:id", async ({ req, params }) => {
    host.reader(req);
    const task = await readContext(grid.ctx, "task", params.id!);
    if (!task) throw notFound(`task ${params.id}`);
    return taskView(task.state, task.context);
  });
  host.on("POST", "tasks/:id/kill", async ({ req, params }) => kill(host, grid, req, "task", params.id!));
  host.on("POST", "tasks/:id/reassign", async ({ req, params }) =>
    reassign(host, grid, req, "task", params.id!),
  );
  host.on("POST", "tasks/:id/retry", async ({ req, params }) => {
    await ownerOrOperator(host, grid, req, "task", params.id!, "retry");
    return host.created(await retryFailedJobs(grid.ctx, params.id!));
  });
}
