import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { JOB_STATES, type JobContext } from "../actors/job/schema.js";
import { jobIdOf, refs } from "../actors/shared/names.js";
import { JOB_OUTCOMES } from "../actors/shared/schemas.js";
import type { TaskContext } from "../actors/task/schema.js";
import { describeIssues } from "../protocol/codec.js";
import { actorIdSchema, actorKindSchema } from "../runtime/actor-ref.js";
import { isRuntimeError, type RuntimeError } from "../runtime/errors.js";
import { queueNames } from "../store/queue-index.js";
import { isStorageError } from "../transfer/storage-element.js";
import { readContext } from "../workload/context.js";
import { WorkloadError } from "../workload/errors.js";
import type { Grid } from "../workload/grid.js";
import { reassignJob, reassignTask } from "../workload/reassign.js";
import { subscribeDataset } from "../workload/replication.js";
import { shareUsageAt } from "../workload/share-usage.js";
import { listSites, liveJobsBySite, readSite } from "../workload/sites.js";
import { retryFailedJobs } from "../workload/task-retry.js";
import * as schemas from "./api-schemas.js";
import { datasetView, type JobView, jobView, siteView, subscriptionView, taskView } from "./api-views.js";
import { catalogQueues } from "./catalog-feed.js";
import { registerFactoryRoutes } from "./factory-api.js";
import { HttpError, readBody, readJson, sendError, sendJson } from "./http-util.js";
import type { IncidentLog } from "./incidents.js";
import { gridSummary } from "./summary.js";
import { bearerToken, type Principal, type TokenRegistry } from "./tokens.js";
import { brokerageOf, explainJob } from "./why.js";
import { literalPrefix, wildcardRegExp } from "./wildcard.js";

const DEFAULT_MAX_CONTROL_JSON_BYTES = 64 * 1024;

export interface ApiOptions {
  /** A task submission's body, the largest JSON the API takes. */
  maxJsonBytes: number;
  /** Every other JSON body (a status, a kill, a token, an incident, a factory report); default 64 KiB. */
  maxControlJsonBytes?: number;
  maxUploadBytes: number;
  /** Reads need a user token too (the monitor then needs one); by default anyone may read. */
  readRequiresToken?: boolean;
}

/** What the API reads of the dispatcher and the metrics: this node's pilots and dispatch rates. */
export interface PilotView {
  connectedPilots(): { pilotId: string; site: string; ready: string[]; draining: boolean }[];
  connectedAt(site: string): number;
  dispatchRatePerMin(site: string): number;
  /** Tells the site's pilots on this node to finish their work and exit; how many were told. */
  drainSite(site: string, reason: string): number;
}

export interface ApiDeps {
  grid: Grid;
  tokens: TokenRegistry;
  pilots: PilotView;
  incidents: IncidentLog;
  options: ApiOptions;
}

type User = Extract<Principal, { kind: "user" }>;

interface Call {
  req: IncomingMessage;
  url: URL;
  params: Record<string, string>;
}

/** A handler's answer for a resource it made: 201 instead of 200. */
class Created {
  constructor(readonly body: unknown) {}
}

/** A handler answers a body (status 200) or a `Created` (201). */
type Handler = (call: Call) => Promise<unknown>;

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

/** Validates input against a schema; a 400 naming every bad field otherwise. */
function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: "query" | "body"): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new HttpError(
      400,
      what === "query" ? "BAD_QUERY" : "BAD_REQUEST",
      `bad ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      { issues },
    );
  }
  return parsed.data;
}

function parseQuery<S extends z.ZodType>(schema: S, url: URL): z.output<S> {
  return parseWith(schema, Object.fromEntries(url.searchParams), "query");
}

function notFound(what: string): HttpError {
  return new HttpError(404, "NOT_FOUND", `${what} does not exist`);
}

function mayActOn(user: User, owner: string): boolean {
  return user.role !== "user" || user.user === owner;
}

/** The JSON API under `/api/v1`; docs/api.md lists every route with its costs. */
export class Api {
  private readonly routes: { method: string; pattern: string[]; handler: Handler }[] = [];
  private readonly grid: Grid;

  constructor(private readonly deps: ApiDeps) {
    this.grid = deps.grid;
    this.registerRoutes();
  }

  /** Handles `/api/v1/...`; false when the path is not the API's. */
  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith("/api/v1/")) return false;
    this.dispatch(req, url)
      .then(([status, body]) => sendJson(res, status, body))
      .catch((err: unknown) => {
        const httpError = toHttpError(err);
        if (httpError.status >= 500) onError(err);
        sendError(res, httpError);
      });
    return true;
  }

  private async dispatch(req: IncomingMessage, url: URL): Promise<[number, unknown]> {
    const parts = url.pathname.slice("/api/v1/".length).split("/").filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? "GET";
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchPath(route.pattern, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const answer = await route.handler({ req, url, params });
      return answer instanceof Created ? [201, answer.body] : [200, answer];
    }
    if (pathMatched)
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed on ${url.pathname}`);
    throw new HttpError(404, "NOT_FOUND", `no route ${method} ${url.pathname}`);
  }

  private on(method: string, path: string, handler: Handler): void {
    this.routes.push({ method, pattern: path.split("/").filter(Boolean), handler });
  }

  private readControlJson(req: IncomingMessage): Promise<unknown> {
    return readJson(req, this.deps.options.maxControlJsonBytes ?? DEFAULT_MAX_CONTROL_JSON_BYTES);
  }

  /** Why a request's token opens nothing: expired (and when), or not known at all. */
  private refusedToken(req: IncomingMessage): HttpError {
    const expiredAtMs = this.deps.tokens.expiredAtMs(bearerToken(req));
    return new HttpError(
      401,
      "UNAUTHORIZED",
      expiredAtMs !== null
        ? `the token expired at ${new Date(expiredAtMs).toISOString()}: ask an admin for a new one (panda token create)`
        : "the token is not known: check PANDA_TOKEN or --token",
    );
  }

  /** Anyone may read unless reads were configured to need a token; a bad token is refused either way. */
  private reader(req: IncomingMessage): User | null {
    const principal = this.deps.tokens.fromRequest(req);
    if (principal?.kind === "pilot") throw new HttpError(403, "FORBIDDEN", "pilot tokens cannot use the API");
    if (principal) return principal;
    if (req.headers.authorization) throw this.refusedToken(req);
    if (this.deps.options.readRequiresToken)
      throw new HttpError(
        401,
        "UNAUTHORIZED",
        "this server needs a user token to read: Authorization: Bearer <token>",
      );
    return null;
  }

  private user(req: IncomingMessage): User {
    const principal = this.deps.tokens.fromRequest(req);
    if (!principal) {
      if (req.headers.authorization) throw this.refusedToken(req);
      throw new HttpError(401, "UNAUTHORIZED", "a user token is required: Authorization: Bearer <token>");
    }
    if (principal.kind !== "user") throw new HttpError(403, "FORBIDDEN", "pilot tokens cannot use the API");
    return principal;
  }

  private withRole(req: IncomingMessage, roles: User["role"][], what: string): User {
    const user = this.user(req);
    if (!roles.includes(user.role))
      throw new HttpError(
        403,
        "FORBIDDEN",
        `${what} needs the ${roles.join(" or ")} role; ${user.user} is ${user.role}`,
      );
    return user;
  }

  private registerRoutes(): void {
    const nowMs = () => this.grid.runtime.clock.nowMs();
    this.on("GET", "whoami", async ({ req }) => ({ principal: this.reader(req) }));

    this.on("GET", "tasks", async ({ req, url }) => {
      this.reader(req);
      return this.tasks(parseQuery(schemas.tasksQuerySchema, url));
    });
    this.on("POST", "tasks", async ({ req }) => {
      const user = this.user(req);
      const body = await readJson(req, this.deps.options.maxJsonBytes);
      return new Created(await this.grid.submit(body, user.user));
    });
    this.on("GET", "tasks/:id", async ({ req, params }) => {
      this.reader(req);
      const task = await readContext(this.grid.ctx, "task", params.id!);
      if (!task) throw notFound(`task ${params.id}`);
      return taskView(task.state, task.context);
    });
    this.on("POST", "tasks/:id/kill", async ({ req, params }) => this.kill(req, "task", params.id!));
    this.on("POST", "tasks/:id/reassign", async ({ req, params }) => this.reassign(req, "task", params.id!));
    this.on("POST", "tasks/:id/retry", async ({ req, params }) => {
      await this.ownerOrOperator(req, "task", params.id!, "retry");
      return new Created(await retryFailedJobs(this.grid.ctx, params.id!));
    });

    this.on("GET", "jobs", async ({ req, url }) => {
      this.reader(req);
      return this.jobs(parseQuery(schemas.jobsQuerySchema, url));
    });
    this.on("GET", "jobs/:id", async ({ req, params }) => {
      this.reader(req);
      const view = await this.grid.runtime.inspect(refs.job(params.id!), 200);
      if (!view) throw notFound(`job ${params.id}`);
      const context = view.context as JobContext;
      return {
        job: jobView(view.state, context),
        context,
        history: view.history,
        brokerage: brokerageOf(context, view.history),
      };
    });
    this.on("GET", "jobs/:id/why", async ({ req, params }) => {
      this.reader(req);
      const why = await explainJob(this.grid.ctx, this.deps.incidents, params.id!);
      if (!why) throw notFound(`job ${params.id}`);
      return why;
    });
    this.on("POST", "jobs/:id/kill", async ({ req, params }) => this.kill(req, "job", params.id!));
    this.on("POST", "jobs/:id/reassign", async ({ req, params }) => this.reassign(req, "job", params.id!));

    this.on("GET", "actors/:kind/:id", async ({ req, url, params }) => {
      this.reader(req);
      return this.actor(params.kind!, params.id!, parseQuery(schemas.actorQuerySchema, url));
    });

    this.on("GET", "sites", async ({ req }) => {
      this.reader(req);
      const sites = await listSites(this.grid.ctx);
      return { sites: sites.map((s) => siteView(s, this.deps.pilots.connectedAt(s.name), nowMs())) };
    });
    this.on("GET", "sites/:name", async ({ req, params }) => {
      this.reader(req);
      const site = await readSite(this.grid.ctx, params.name!);
      if (!site) throw notFound(`site ${params.name}`);
      return {
        ...siteView(site, this.deps.pilots.connectedAt(site.name), nowMs()),
        incidents: site.incidents,
        shares: await shareUsageAt(this.grid.ctx, site.name),
      };
    });
    this.on("POST", "sites/:name/status", async ({ req, params }) => {
      const user = this.withRole(req, ["operator", "admin"], "changing a site's status");
      const body = parseWith(schemas.siteStatusBodySchema, await this.readControlJson(req), "body");
      if (!(await readContext(this.grid.ctx, "site", params.name!))) throw notFound(`site ${params.name}`);
      await this.grid.runtime.send(refs.site(params.name!), {
        type: "setStatus",
        ...body,
        by: user.user,
        atMs: nowMs(),
      });
      return { ok: true, site: params.name, status: body.status };
    });

    this.on("POST", "sites/:name/drain", async ({ req, params }) => {
      const user = this.withRole(req, ["operator", "admin"], "draining a site");
      const { reason } = parseWith(schemas.drainBodySchema, await this.readControlJson(req), "body");
      const site = params.name!;
      if (!(await readContext(this.grid.ctx, "site", site))) throw notFound(`site ${site}`);
      // Recorded first: other nodes' pilots of the site learn of it from the site when they next ask for work.
      await this.grid.runtime.send(refs.site(site), { type: "drain", by: user.user, reason, atMs: nowMs() });
      return { ok: true, site, pilotsTold: this.deps.pilots.drainSite(site, `${user.user}: ${reason}`) };
    });
    this.on("GET", "pilots", async ({ req, url }) => {
      this.reader(req);
      return this.pilots(parseQuery(schemas.pilotsQuerySchema, url).site);
    });

    this.on("GET", "datasets", async ({ req, url }) => {
      this.reader(req);
      return this.datasets(parseQuery(schemas.datasetsQuerySchema, url));
    });
    this.on("GET", "datasets/:name", async ({ req, params }) => {
      this.reader(req);
      const dataset = await readContext(this.grid.ctx, "dataset", params.name!);
      if (!dataset) throw notFound(`dataset ${params.name}`);
      return datasetView(dataset.state, dataset.context);
    });
    this.on("POST", "datasets/:name/files", async ({ req, url, params }) => {
      this.user(req);
      const { site, lfn } = parseQuery(schemas.putFileQuerySchema, url);
      const bytes = await readBody(req, this.deps.options.maxUploadBytes);
      const checksum = req.headers["x-panda-checksum"];
      const [file] = await this.grid.putFiles(params.name!, site, [
        { lfn, bytes, ...(typeof checksum === "string" ? { checksum } : {}) },
      ]);
      return new Created(file);
    });
    this.on("POST", "datasets/:name/subscriptions", async ({ req, params }) => {
      this.user(req);
      const { site } = parseWith(schemas.subscribeBodySchema, await this.readControlJson(req), "body");
      const answer = await subscribeDataset(this.grid.ctx, params.name!, site);
      return answer.created ? new Created(answer) : answer;
    });

    this.on("GET", "subscriptions", async ({ req, url }) => {
      this.reader(req);
      return this.subscriptions(parseQuery(schemas.subscriptionsQuerySchema, url));
    });
    this.on("GET", "subscriptions/:id", async ({ req, params }) => {
      this.reader(req);
      const sub = await readContext(this.grid.ctx, "subscription", params.id!);
      if (!sub) throw notFound(`subscription ${params.id}`);
      return { ...subscriptionView(sub.state, sub.context), files: sub.context.files };
    });

    this.on("GET", "summary", async ({ req, url }) => {
      this.reader(req);
      const { windowMs } = parseQuery(schemas.summaryQuerySchema, url);
      return gridSummary(await listSites(this.grid.ctx), windowMs, nowMs());
    });

    this.on("GET", "incidents", async ({ req, url }) => {
      this.reader(req);
      const query = parseQuery(schemas.incidentsQuerySchema, url);
      return {
        incidents: await this.deps.incidents.search({
          q: query.q,
          site: query.site,
          source: query.source,
          jobId: query.jobId,
          sinceMs: query.since,
          limit: query.limit,
        }),
      };
    });
    this.on("POST", "incidents", async ({ req }) => new Created(await this.reportIncident(req)));

    registerFactoryRoutes(
      {
        on: (method, path, handler) => this.on(method, path, handler),
        reader: (req) => this.reader(req),
        parseBody: (schema, value) => parseWith(schema, value, "body"),
        readBody: async (schema, req) => parseWith(schema, await this.readControlJson(req), "body"),
        parseQuery: (schema, url) => parseQuery(schema, url),
        created: (body) => new Created(body),
      },
      {
        grid: this.grid,
        tokens: this.deps.tokens,
        incidents: this.deps.incidents,
        idleThreads: (site) =>
          this.deps.pilots
            .connectedPilots()
            .filter((p) => p.site === site && !p.draining)
            .reduce((n, p) => n + p.ready.length, 0),
      },
    );

    this.on("GET", "tokens", async ({ req }) => {
      this.withRole(req, ["admin"], "listing tokens");
      return { tokens: this.deps.tokens.list() };
    });
    this.on("POST", "tokens", async ({ req }) => {
      const admin = this.withRole(req, ["admin"], "creating tokens");
      const spec = parseWith(schemas.tokenBodySchema, await this.readControlJson(req), "body");
      const { ttlSec, ...forWhom } = spec;
      const { token, principal, expiresAtMs } = this.deps.tokens.create(
        forWhom,
        admin.user,
        nowMs(),
        ttlSec === undefined ? null : ttlSec * 1000,
      );
      return new Created({
        token,
        tokenId: principal.tokenId,
        principal,
        expiresAtMs,
        note: "the token is shown only now: keep it",
      });
    });
    this.on("DELETE", "tokens/:id", async ({ req, params }) => {
      this.withRole(req, ["admin"], "revoking tokens");
      if (!this.deps.tokens.revoke(params.id!))
        throw new HttpError(
          404,
          "NOT_FOUND",
          `no created token ${params.id} (configured tokens are revoked in the configuration)`,
        );
      return { ok: true, tokenId: params.id };
    });
  }

  /** The caller, once the job or task exists and the caller may change it: its owner, or an operator. */
  private async ownerOrOperator(
    req: IncomingMessage,
    kind: "job" | "task",
    id: string,
    verb: string,
  ): Promise<User> {
    const user = this.user(req);
    const actor = await readContext(this.grid.ctx, kind, id);
    if (!actor) throw notFound(`${kind} ${id}`);
    if (!mayActOn(user, actor.context.user))
      throw new HttpError(
        403,
        "FORBIDDEN",
        `${kind} ${id} belongs to ${actor.context.user}; users may ${verb} only their own ${kind}s`,
      );
    return user;
  }

  private async kill(req: IncomingMessage, kind: "job" | "task", id: string) {
    const user = await this.ownerOrOperator(req, kind, id, "kill");
    const { reason } = parseWith(schemas.killBodySchema, await this.readControlJson(req), "body");
    const atMs = this.grid.runtime.clock.nowMs();
    await this.grid.runtime.send(refs[kind](id), { type: "kill", by: user.user, reason, atMs });
    return { ok: true, kind, id };
  }

  /** Operators only: a reassignment moves work between sites, which is the grid's business, not a user's. */
  private async reassign(req: IncomingMessage, kind: "job" | "task", id: string) {
    const user = this.withRole(req, ["operator", "admin"], `reassigning a ${kind}`);
    const body = parseWith(schemas.reassignBodySchema, await this.readControlJson(req), "body");
    const request = { by: user.user, reason: body.reason, site: body.site ?? null };
    const reassign = kind === "job" ? reassignJob : reassignTask;
    return { ok: true, kind, id, ...(await reassign(this.grid.ctx, id, request)) };
  }

  /** Pilots report with their site's token (the site is theirs); users and operators with theirs. */
  private async reportIncident(req: IncomingMessage) {
    const principal = this.deps.tokens.fromRequest(req);
    if (!principal) throw new HttpError(401, "UNAUTHORIZED", "a pilot or user token is required to report");
    const body = parseWith(schemas.incidentBodySchema, await this.readControlJson(req), "body");
    const isPilot = principal.kind === "pilot";
    if (isPilot && body.site && body.site !== principal.site)
      throw new HttpError(403, "FORBIDDEN", `a pilot of ${principal.site} cannot report for ${body.site}`);
    return this.deps.incidents.record({
      atMs: this.grid.runtime.clock.nowMs(),
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

  private async taskIds(): Promise<string[]> {
    return (await this.grid.ctx.index.range(queueNames.tasks(), 0, 1_000_000)).map((e) => e.member).reverse();
  }

  /** Newest first; every task is read (one store read each) until the page is full. */
  private async tasks(query: z.output<typeof schemas.tasksQuerySchema>) {
    const views: ReturnType<typeof taskView>[] = [];
    let skipped = 0;
    for (const ids of chunks(await this.taskIds(), 64)) {
      const tasks = await Promise.all(ids.map((id) => readContext(this.grid.ctx, "task", id)));
      for (const task of tasks) {
        if (!task) continue;
        if (query.user && task.context.user !== query.user) continue;
        if (query.state && task.state !== query.state) continue;
        if (skipped++ < query.offset) continue;
        views.push(taskView(task.state, task.context));
        if (views.length >= query.limit) return { tasks: views, nextOffset: query.offset + views.length };
      }
    }
    return { tasks: views, nextOffset: null };
  }

  /**
   * Every attempt of every job of the selected tasks, newest task first. The
   * task (its user, its lifetime) prunes before any of its jobs is read; then
   * each attempt is one store read. For a live state that implies a site, the
   * site actors' counts say how many jobs can match, so the scan stops once
   * it found them all instead of reading every older task. docs/api.md says
   * what this costs.
   */
  private async jobs(query: schemas.JobsQuery) {
    const taskIds = query.task ? [query.task] : await this.taskIds();
    const atMost = await this.liveJobsAtMost(query);
    const jobs: JobView[] = [];
    let matched = 0;
    if (atMost === 0) return { jobs, nextOffset: null };
    for (const taskChunk of chunks(taskIds, 32)) {
      const tasks = await Promise.all(taskChunk.map((id) => readContext(this.grid.ctx, "task", id)));
      for (const task of tasks) {
        if (!task || !taskMayHold(task.state, task.context, query)) continue;
        const ids = task.context.attempts.flatMap((latest, index) =>
          Array.from({ length: latest }, (_, a) => jobIdOf(task.context.taskId, index, a + 1)),
        );
        for (const chunk of chunks(ids, 256)) {
          const views = await Promise.all(chunk.map((id) => readContext(this.grid.ctx, "job", id)));
          for (const view of views) {
            if (!view) continue;
            const job = jobView(view.state, view.context);
            if (!jobMatches(job, query)) continue;
            if (++matched <= query.offset) continue;
            jobs.push(job);
            if (jobs.length >= query.limit) return { jobs, nextOffset: query.offset + jobs.length };
            if (atMost !== null && matched >= atMost) return { jobs, nextOffset: null };
          }
        }
      }
    }
    return { jobs, nextOffset: null };
  }

  /** How many jobs the site actors count in the asked live state (at the asked site); null when they cannot say. */
  private async liveJobsAtMost(query: schemas.JobsQuery): Promise<number | null> {
    if (!query.state || !SITED_LIVE_STATES.has(query.state)) return null;
    const state = query.state;
    const live = await liveJobsBySite(this.grid.ctx);
    const counts = query.site ? [live.get(query.site) ?? {}] : [...live.values()];
    return counts.reduce((sum, jobs) => sum + (jobs[state] ?? 0), 0);
  }

  private async actor(kind: string, id: string, query: z.output<typeof schemas.actorQuerySchema>) {
    if (!actorKindSchema.safeParse(kind).success || !actorIdSchema.safeParse(id).success) {
      throw new HttpError(400, "BAD_ACTOR_REF", `bad actor reference ${kind}/${id}`);
    }
    const view = await this.grid.runtime.inspect({ kind, id }, query.history);
    if (!view) throw notFound(`${kind}/${id}`);
    if (query.at === undefined) return view;
    const at = query.at;
    // The state at a past time is the target of the last transition committed by then.
    const before = view.history.filter((h) => h.at <= at && !h.refused);
    const last = before.at(-1);
    if (!last)
      throw new HttpError(404, "NOT_FOUND", `${kind}/${id} did not exist at ${new Date(at).toISOString()}`);
    return { kind, id, at, version: last.v, state: last.to, history: before };
  }

  private pilots(site: string | undefined) {
    const pilots = this.deps.pilots.connectedPilots().filter((p) => !site || p.site === site);
    const bySite = new Map<string, typeof pilots>();
    for (const pilot of pilots) bySite.set(pilot.site, [...(bySite.get(pilot.site) ?? []), pilot]);
    const sites = [...bySite].map(([name, list]) => ({
      site: name,
      connected: list.length,
      readyThreads: list.reduce((n, p) => n + p.ready.length, 0),
      draining: list.filter((p) => p.draining).length,
      dispatchesPerMin: this.deps.pilots.dispatchRatePerMin(name),
    }));
    return { node: this.grid.runtime.nodeId, pilots, sites };
  }

  /** Names from the catalog index, matched against the pattern; then each match's state is read. */
  private async datasets(query: z.output<typeof schemas.datasetsQuerySchema>) {
    const regexp = wildcardRegExp(query.pattern);
    const prefix = literalPrefix(query.pattern);
    const names = (await this.grid.ctx.index.range(catalogQueues.datasets, 0, 10_000_000))
      .map((e) => e.member)
      .filter((name) => name.startsWith(prefix) && regexp.test(name))
      .slice(0, query.limit);
    const views = await Promise.all(names.map((name) => readContext(this.grid.ctx, "dataset", name)));
    return {
      datasets: views.flatMap((d) =>
        d
          ? [
              {
                name: d.context.name,
                state: d.state,
                fileCount: d.context.fileCount,
                totalBytes: d.context.totalBytes,
                sites: Object.keys(d.context.replicas),
              },
            ]
          : [],
      ),
    };
  }

  private async subscriptions(query: z.output<typeof schemas.subscriptionsQuerySchema>) {
    const ids = (await this.grid.ctx.index.range(catalogQueues.subscriptions, 0, 10_000_000))
      .map((e) => e.member)
      .reverse()
      .filter(
        (id) =>
          (!query.site || id.endsWith(`@${query.site}`)) && (!query.dataset || id.startsWith(query.dataset)),
      );
    const found: ReturnType<typeof subscriptionView>[] = [];
    for (const chunk of chunks(ids, 128)) {
      const subs = await Promise.all(chunk.map((id) => readContext(this.grid.ctx, "subscription", id)));
      for (const sub of subs) {
        if (!sub) continue;
        if (query.dataset && sub.context.dataset !== query.dataset) continue;
        if (query.state && sub.state !== query.state) continue;
        found.push(subscriptionView(sub.state, sub.context));
        if (found.length >= query.limit) return { subscriptions: found };
      }
    }
    return { subscriptions: found };
  }
}

/** Live states a job is in only once brokerage gave it a site: the site actors count them. */
const UNSITED_STATES: readonly string[] = ["pending", "defined", "waiting", ...JOB_OUTCOMES];
const SITED_LIVE_STATES = new Set<string>(JOB_STATES.filter((state) => !UNSITED_STATES.includes(state)));

const FINAL_TASK_STATES = new Set(["done", "finished", "failed", "aborted"]);

/** False when no job of the task can match: another user's, created after `until`, ended before `since`. */
function taskMayHold(state: string, task: TaskContext, query: schemas.JobsQuery): boolean {
  if (query.user && task.user !== query.user) return false;
  const created = task.timestamps.defined;
  if (query.until !== undefined && created !== undefined && created > query.until) return false;
  const endedAt = task.timestamps[state as keyof TaskContext["timestamps"]];
  if (
    query.since !== undefined &&
    FINAL_TASK_STATES.has(state) &&
    endedAt !== undefined &&
    endedAt < query.since
  )
    return false;
  return true;
}

function jobMatches(job: JobView, query: schemas.JobsQuery): boolean {
  if (query.state && job.state !== query.state) return false;
  if (query.site && job.site !== query.site) return false;
  if (query.user && job.user !== query.user) return false;
  if (query.since === undefined && query.until === undefined) return true;
  const enteredMs = job.timestamps[job.state as keyof typeof job.timestamps];
  if (enteredMs === undefined) return false;
  return (
    (query.since === undefined || enteredMs >= query.since) &&
    (query.until === undefined || enteredMs <= query.until)
  );
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Route params by name, or null when the path does not fit the pattern. */
function matchPath(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (const [i, segment] of pattern.entries()) {
    const part = parts[i]!;
    if (segment.startsWith(":")) params[segment.slice(1)] = part;
    else if (segment !== part) return null;
  }
  return params;
}
