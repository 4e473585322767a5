import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { JobContext } from "../actors/job/schema.js";
import { jobIdOf, refs } from "../actors/shared/names.js";
import type { TaskContext } from "../actors/task/schema.js";
import { describeIssues } from "../protocol/codec.js";
import { actorIdSchema, actorKindSchema } from "../runtime/actor-ref.js";
import { isRuntimeError, type RuntimeError } from "../runtime/errors.js";
import { queueNames } from "../store/queue-index.js";
import { isStorageError } from "../transfer/storage-element.js";
import { readContext } from "../workload/context.js";
import { WorkloadError } from "../workload/errors.js";
import type { Grid } from "../workload/grid.js";
import { HttpError, readBody, readJson, sendError, sendJson } from "./http-util.js";
import type { Principal, TokenRegistry } from "./tokens.js";

export interface ApiOptions {
  maxJsonBytes: number;
  maxUploadBytes: number;
}

const jobsQuerySchema = z.object({
  task: z.string().optional(),
  state: z.string().optional(),
  site: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(500),
});

const actorQuerySchema = z.object({
  history: z.coerce.number().int().min(0).max(10_000).default(1000),
  at: z.coerce.number().nonnegative().optional(),
});

const putFileQuerySchema = z.object({ site: z.string().min(1), lfn: z.string().min(1) });

function parseQuery<S extends z.ZodType>(schema: S, url: URL): z.output<S> {
  const parsed = schema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new HttpError(400, "BAD_QUERY", issues.map((i) => `${i.path}: ${i.message}`).join("; "), {
      issues,
    });
  }
  return parsed.data;
}

const STATUS_BY_RUNTIME_CODE: Partial<Record<RuntimeError["code"], number>> = {
  UNKNOWN_KIND: 404,
  BAD_ACTOR_REF: 400,
  BAD_EVENT: 400,
  ACTOR_NOT_FOUND: 404,
  EVENT_NOT_ACCEPTED: 409,
  ACTOR_EXISTS: 409,
};

const STATUS_BY_WORKLOAD_CODE: Record<WorkloadError["code"], number> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  DATASET_NOT_FOUND: 404,
  DATASET_EMPTY: 409,
  DATASET_FROZEN: 409,
  CONFLICT: 409,
  FORBIDDEN: 403,
};

/** Maps every known failure to an HTTP answer; anything else is a 500 whose details stay in the log. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof WorkloadError)
    return new HttpError(STATUS_BY_WORKLOAD_CODE[err.code], err.code, err.message, err.details);
  if (isRuntimeError(err))
    return new HttpError(STATUS_BY_RUNTIME_CODE[err.code] ?? 500, err.code, err.message, err.details);
  if (isStorageError(err)) {
    const status =
      err.code === "BAD_PATH" ? 400 : err.code === "NOT_FOUND" ? 404 : err.code === "TOO_LARGE" ? 413 : 422;
    return new HttpError(status, err.code, err.message);
  }
  return new HttpError(500, "INTERNAL", "internal error");
}

/** The JSON API under `/api/v1` (the operations `panda` needs; docs/api.md lists them). */
export class Api {
  constructor(
    private readonly grid: Grid,
    private readonly tokens: TokenRegistry,
    private readonly options: ApiOptions,
  ) {}

  /** Handles `/api/v1/...`; false when the path is not the API's. */
  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith("/api/v1/")) return false;
    this.route(req, res, url).catch((err: unknown) => {
      const httpError = toHttpError(err);
      if (httpError.status >= 500) onError(err);
      sendError(res, httpError);
    });
    return true;
  }

  private user(req: IncomingMessage): Extract<Principal, { kind: "user" }> {
    const principal = this.tokens.fromRequest(req);
    if (!principal)
      throw new HttpError(401, "UNAUTHORIZED", "a user token is required: Authorization: Bearer <token>");
    if (principal.kind !== "user") throw new HttpError(403, "FORBIDDEN", "pilot tokens cannot use the API");
    return principal;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parts = url.pathname.slice("/api/v1/".length).split("/").filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? "GET";
    const [resource, id, action] = parts;
    if (resource === "tasks" && method === "POST" && !id) {
      const user = this.user(req);
      const body = await readJson(req, this.options.maxJsonBytes);
      return sendJson(res, 201, await this.grid.submit(body, user.user));
    }
    if (resource === "tasks" && method === "GET" && !id)
      return sendJson(res, 200, { tasks: await this.tasks() });
    if (resource === "tasks" && method === "GET" && id) return sendJson(res, 200, await this.task(id));
    if (resource === "jobs" && method === "GET" && !id) {
      return sendJson(res, 200, { jobs: await this.jobs(parseQuery(jobsQuerySchema, url)) });
    }
    if (resource === "jobs" && method === "POST" && id && action === "kill") {
      return sendJson(res, 200, await this.killJob(this.user(req), id));
    }
    if (resource === "actors" && method === "GET" && id && action) {
      return sendJson(res, 200, await this.actor(id, action, parseQuery(actorQuerySchema, url)));
    }
    if (resource === "datasets" && method === "POST" && id && action === "files") {
      this.user(req);
      const { site, lfn } = parseQuery(putFileQuerySchema, url);
      const bytes = await readBody(req, this.options.maxUploadBytes);
      const checksum = req.headers["x-panda-checksum"];
      const [file] = await this.grid.putFiles(id, site, [
        { lfn, bytes, ...(typeof checksum === "string" ? { checksum } : {}) },
      ]);
      return sendJson(res, 201, file);
    }
    throw new HttpError(404, "NOT_FOUND", `no route ${method} ${url.pathname}`);
  }

  private async taskIds(): Promise<string[]> {
    return (await this.grid.ctx.index.range(queueNames.tasks(), 0, 100_000)).map((e) => e.member);
  }

  private async task(taskId: string) {
    const task = await readContext(this.grid.ctx, "task", taskId);
    if (!task) throw new HttpError(404, "NOT_FOUND", `task ${taskId} does not exist`);
    return taskView(task.state, task.context);
  }

  private async tasks() {
    const views = await Promise.all(
      (await this.taskIds()).map((id) => readContext(this.grid.ctx, "task", id)),
    );
    return views.flatMap((t) => (t ? [taskView(t.state, t.context)] : []));
  }

  /** Every attempt of every job of the selected tasks, newest task first. */
  private async jobs(query: z.output<typeof jobsQuerySchema>) {
    const taskIds = query.task ? [query.task] : (await this.taskIds()).reverse();
    const jobs: ReturnType<typeof jobView>[] = [];
    for (const taskId of taskIds) {
      const task = await readContext(this.grid.ctx, "task", taskId);
      if (!task) continue;
      const ids = task.context.attempts.flatMap((latest, index) =>
        Array.from({ length: latest }, (_, a) => jobIdOf(taskId, index, a + 1)),
      );
      const views = await Promise.all(ids.map((id) => readContext(this.grid.ctx, "job", id)));
      for (const view of views) {
        if (!view) continue;
        const job = jobView(view.state, view.context);
        if (query.state && job.state !== query.state) continue;
        if (query.site && job.site !== query.site) continue;
        jobs.push(job);
        if (jobs.length >= query.limit) return jobs;
      }
    }
    return jobs;
  }

  private async killJob(user: Extract<Principal, { kind: "user" }>, jobId: string) {
    const job = await readContext(this.grid.ctx, "job", jobId);
    if (!job) throw new HttpError(404, "NOT_FOUND", `job ${jobId} does not exist`);
    if (user.role === "user" && job.context.user !== user.user) {
      throw new HttpError(
        403,
        "FORBIDDEN",
        `job ${jobId} belongs to ${job.context.user}; users may kill only their own jobs`,
      );
    }
    const atMs = this.grid.runtime.clock.nowMs();
    await this.grid.runtime.send(refs.job(jobId), {
      type: "kill",
      by: user.user,
      reason: "killed by request",
      atMs,
    });
    return { ok: true };
  }

  private async actor(kind: string, id: string, query: z.output<typeof actorQuerySchema>) {
    if (!actorKindSchema.safeParse(kind).success || !actorIdSchema.safeParse(id).success) {
      throw new HttpError(400, "BAD_ACTOR_REF", `bad actor reference ${kind}/${id}`);
    }
    const view = await this.grid.runtime.inspect({ kind, id }, query.history);
    if (!view) throw new HttpError(404, "NOT_FOUND", `${kind}/${id} does not exist`);
    if (query.at === undefined) return view;
    // The state at a past time is the target of the last transition committed by then.
    const before = view.history.filter((h) => h.at <= query.at! && !h.refused);
    const last = before.at(-1);
    if (!last)
      throw new HttpError(
        404,
        "NOT_FOUND",
        `${kind}/${id} did not exist at ${new Date(query.at).toISOString()}`,
      );
    return { kind, id, at: query.at, version: last.v, state: last.to, history: before };
  }
}

export function taskView(state: string, task: TaskContext) {
  return {
    taskId: task.taskId,
    state,
    user: task.user,
    type: task.type,
    jobCount: task.jobCount,
    counts: task.counts,
    outputDataset: task.outputDataset,
    timestamps: task.timestamps,
  };
}

export function jobView(state: string, job: JobContext) {
  return {
    jobId: job.jobId,
    taskId: job.taskId,
    attempt: job.attempt,
    // The top-level state (`defined`, not `defined.brokering`): what users filter by.
    state: job.state ?? state,
    site: job.site,
    type: job.type,
    user: job.user,
    priority: job.priority,
    pilot: job.pilot,
    error: job.error,
    timestamps: job.timestamps,
  };
}
