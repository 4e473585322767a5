// The API routes pilot factories use and show: site demand, per-batch-job pilot tokens, pilot-job records, factory reports.
import { z } from "zod";
import { factoryListed } from "../actors/factory/global-projections.js";
import type { FactoryContext, QueueReport } from "../actors/factory/schema.js";
import { factoryReportSchema } from "../actors/factory/schema.js";
import { pilotJobListed } from "../actors/pilot-job/global-projections.js";
import {
  agentNameSchema,
  FINAL_PILOT_JOB_STATES,
  type PilotJobContext,
  pilotJobInputSchema,
  pilotJobUpdateSchema,
} from "../actors/pilot-job/schema.js";
import { indexRemove } from "../actors/shared/global-effects.js";
import { nameSchema } from "../actors/shared/schemas.js";
import { isRuntimeError } from "../runtime/errors.js";
import { factoryQueues } from "../store/index-names.js";
import { keepNewest, writeIndexEffect } from "../workload/global-indexes.js";
import type { Grid } from "../workload/grid.js";
import type { IncidentLog } from "../workload/incident-log.js";
import { readSite } from "../workload/sites.js";
import type { RouteHost } from "./api-routing.js";
import { HttpError } from "./http-util.js";
import type { Principal, TokenRegistry } from "./tokens.js";

export interface FactoryApiDeps {
  grid: Grid;
  tokens: TokenRegistry;
  incidents: IncidentLog;
  /** Ready (idle) threads of this node's pilots at a site. */
  idleThreads(site: string): number;
}

/** Longest lifetime a pilot-job token may be minted with: a batch job's queue wait plus its walltime. */
const MAX_PILOT_TOKEN_TTL_SEC = 7 * 24 * 3600;
const MAX_LISTED = 5_000;
/** Ended records kept listed per factory; older ones stay inspectable by id. */
const KEPT_PER_FACTORY = 2_000;

const pilotTokenBodySchema = z.object({
  pilotJobId: nameSchema,
  ttlSec: z.number().int().positive().max(MAX_PILOT_TOKEN_TTL_SEC),
});

const pilotJobPutSchema = z.object({
  record: pilotJobInputSchema.omit({ id: true, atMs: true }),
  event: pilotJobUpdateSchema.optional(),
  /** Makes a repeated update (a factory retrying after a timeout) change nothing twice. */
  eventId: z.string().min(1).max(300).optional(),
});

const pilotJobsQuerySchema = z.object({
  factory: agentNameSchema.optional(),
  site: nameSchema.optional(),
  live: z.enum(["true", "false"]).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LISTED).default(500),
});

export function pilotJobView(state: string, job: PilotJobContext) {
  return {
    id: job.id,
    factory: job.factory,
    queue: job.queue,
    site: job.site,
    batchSystem: job.batchSystem,
    batchId: job.batchId,
    pilots: job.pilots,
    state,
    exitCode: job.exitCode,
    reason: job.reason,
    cancelReason: job.cancelReason,
    timestamps: job.timestamps,
  };
}
export type PilotJobView = ReturnType<typeof pilotJobView>;

export function factoryView(factory: FactoryContext) {
  return {
    name: factory.name,
    reportedAtMs: factory.reportedAtMs,
    ...factory.process,
    queues: Object.values(factory.queues),
  };
}

/**
 * Who may act for a site's factory: the site's own pilot token (the long-lived
 * one a site admin holds, never a batch job's short-lived one), or an
 * operator or admin.
 */
function requireAgent(principal: Principal | null, sites: readonly string[]): Principal {
  if (!principal)
    throw new HttpError(401, "UNAUTHORIZED", "a factory needs its site's pilot token, or an operator's");
  if (principal.kind === "user") {
    if (principal.role === "user")
      throw new HttpError(
        403,
        "FORBIDDEN",
        `factories need the operator or admin role; ${principal.user} is user`,
      );
    return principal;
  }
  if (principal.pilotJobId)
    throw new HttpError(403, "FORBIDDEN", "a batch job's pilot token only runs pilots");
  const foreign = sites.find((site) => site !== principal.site);
  if (foreign)
    throw new HttpError(403, "FORBIDDEN", `a pilot token of ${principal.site} cannot act for ${foreign}`);
  return principal;
}

function throttleChanged(before: QueueReport | undefined, after: QueueReport): boolean {
  return (before?.throttle.throttled ?? false) !== after.throttle.throttled;
}

export function registerFactoryRoutes(host: RouteHost, deps: FactoryApiDeps): void {
  const { grid, tokens } = deps;
  const nowMs = () => grid.runtime.clock.nowMs();
  const ref = (kind: "pilot-job" | "factory", id: string) => ({ kind, id });
  const readPilotJob = async (id: string) => {
    const view = await grid.runtime.readState(ref("pilot-job", id));
    return view ? pilotJobView(view.state, view.context as PilotJobContext) : null;
  };

  host.on("GET", "sites/:name/demand", async ({ req, params }) => {
    const site = params.name!;
    const principal = tokens.fromRequest(req);
    if (principal?.kind === "pilot") requireAgent(principal, [site]);
    else host.reader(req);
    const state = await readSite(grid.ctx, site);
    if (!state) throw new HttpError(404, "NOT_FOUND", `site ${site} does not exist`);
    return {
      site,
      status: state.status,
      activated: state.jobs.activated ?? 0,
      assigned: state.jobs.assigned ?? 0,
      idleThreads: deps.idleThreads(site),
      atMs: nowMs(),
    };
  });

  host.on("POST", "sites/:name/pilot-tokens", async ({ req, params }) => {
    const site = params.name!;
    requireAgent(tokens.fromRequest(req), [site]);
    const body = await host.readBody(pilotTokenBodySchema, req);
    const minted = tokens.mintPilotJobToken(site, body.pilotJobId, body.ttlSec * 1000, nowMs());
    return host.created({ ...minted, site, pilotJobId: body.pilotJobId });
  });

  host.on("PUT", "pilot-jobs/:id", async ({ req, params }) => {
    const id = params.id!;
    const principal = tokens.fromRequest(req);
    const body = await host.readBody(pilotJobPutSchema, req);
    requireAgent(principal, [body.record.site]);
    const atMs = nowMs();
    let current = await readPilotJob(id);
    if (current && (current.site !== body.record.site || current.factory !== body.record.factory))
      throw new HttpError(
        409,
        "CONFLICT",
        `pilot job ${id} belongs to ${current.factory} at ${current.site}`,
      );
    if (!current) {
      await grid.runtime
        .send(
          ref("pilot-job", id),
          { type: "create", input: { ...body.record, id, atMs } },
          {
            eventId: `pilot-job-create:${id}`,
          },
        )
        .catch((err: unknown) => {
          if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
        });
      // Listed by its creation's effects too; written now as well, so the factory lists it at once.
      for (const entry of pilotJobListed(body.record.factory, id, atMs))
        await writeIndexEffect(grid.ctx.index, entry);
    }
    let applied = true;
    if (body.event) {
      try {
        await grid.runtime.send(
          ref("pilot-job", id),
          { ...body.event, atMs: body.event.atMs ?? atMs },
          body.eventId ? { eventId: body.eventId } : {},
        );
      } catch (err) {
        // A report the record has moved past (an older observation, an end already seen) changes nothing.
        if (!isRuntimeError(err, "EVENT_NOT_ACCEPTED")) throw err;
        applied = false;
      }
    }
    current = (await readPilotJob(id))!;
    if (FINAL_PILOT_JOB_STATES.has(current.state)) await settle(current.factory, id);
    return { pilotJob: current, applied };
  });

  /** An ended record leaves the live list (its end's effect says so; written now as well); the factory's list keeps the newest few thousand. */
  async function settle(factory: string, id: string): Promise<void> {
    await writeIndexEffect(grid.ctx.index, indexRemove(factoryQueues.livePilotJobs(factory), id));
    await keepNewest(grid.ctx.index, factoryQueues.pilotJobs(factory), KEPT_PER_FACTORY);
  }

  host.on("GET", "pilot-jobs", async ({ req, url }) => {
    const query = host.parseQuery(pilotJobsQuerySchema, url);
    const principal = tokens.fromRequest(req);
    // A site's factory sees its site's records; readers see all.
    let onlySite: string | null = null;
    if (principal?.kind === "pilot") {
      requireAgent(principal, []);
      onlySite = principal.site;
    } else host.reader(req);
    const factories = query.factory
      ? [query.factory]
      : (await grid.ctx.index.range(factoryQueues.factories, 0, 10_000)).map((e) => e.member);
    const ids: string[] = [];
    for (const factory of factories) {
      const queue =
        query.live === "true" ? factoryQueues.livePilotJobs(factory) : factoryQueues.pilotJobs(factory);
      ids.push(...(await grid.ctx.index.range(queue, 0, MAX_LISTED)).map((e) => e.member).reverse());
    }
    const views = await Promise.all(ids.map(readPilotJob));
    const site = onlySite || query.site;
    const pilotJobs = views
      .filter((v): v is PilotJobView => v !== null)
      .filter(
        (v) => (!site || v.site === site) && (query.live !== "true" || !FINAL_PILOT_JOB_STATES.has(v.state)),
      )
      .slice(0, query.limit);
    return { pilotJobs };
  });

  host.on("PUT", "factories/:name/queues/:queue", async ({ req, params }) => {
    const name = host.parseBody(agentNameSchema, params.name);
    const report = await host.readBody(factoryReportSchema, req);
    if (report.queue.name !== params.queue)
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `the report is for queue ${report.queue.name}, not ${params.queue}`,
      );
    const principal = requireAgent(tokens.fromRequest(req), [report.queue.site]);
    const atMs = nowMs();
    const before = await grid.runtime.readState(ref("factory", name));
    if (!before) {
      await grid.runtime
        .send(
          ref("factory", name),
          { type: "create", input: { name, atMs } },
          { eventId: `factory-create:${name}` },
        )
        .catch((err: unknown) => {
          if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
        });
    }
    await grid.runtime.send(ref("factory", name), { type: "report", report, atMs });
    await writeIndexEffect(grid.ctx.index, factoryListed(name, atMs));
    // A site a healthy factory serves stays in brokerage without pilots; a throttled queue vouches for nothing.
    if (
      !report.queue.throttle.throttled &&
      (await grid.runtime.readState({ kind: "site", id: report.queue.site }))
    )
      await grid.runtime.send(
        { kind: "site", id: report.queue.site },
        { type: "pilots.provisioned", factory: name, atMs },
      );
    const earlier = (before?.context as FactoryContext | undefined)?.queues[report.queue.name];
    if (throttleChanged(earlier, report.queue))
      await recordThrottleIncident(name, report.queue, principal, atMs);
    return { ok: true, factory: name, queue: report.queue.name };
  });

  async function recordThrottleIncident(
    factory: string,
    queue: QueueReport,
    principal: Principal,
    atMs: number,
  ): Promise<void> {
    const throttled = queue.throttle.throttled;
    await deps.incidents.record({
      atMs,
      source: "factory",
      level: throttled ? "warn" : "info",
      message: throttled
        ? `factory ${factory} throttles queue ${queue.name}: ${queue.throttle.reason ?? "pilots fail fast"}; one submission per ${queue.throttle.backoffSec} s`
        : `factory ${factory} queue ${queue.name} recovered: pilots succeed again`,
      site: queue.site,
      jobId: null,
      errorClass: throttled ? "pilot" : null,
      errorCode: throttled ? "PILOTS_FAIL_FAST" : null,
      reporter: principal.kind === "user" ? principal.user : `factory:${factory}`,
      details: { factory, queue: queue.name, batchSystem: queue.batchSystem, throttle: queue.throttle },
    });
  }

  host.on("GET", "factories", async ({ req }) => {
    host.reader(req);
    const names = (await grid.ctx.index.range(factoryQueues.factories, 0, 10_000)).map((e) => e.member);
    const views = await Promise.all(names.map((name) => grid.runtime.readState(ref("factory", name))));
    return {
      factories: views.flatMap((v) => (v ? [factoryView(v.context as FactoryContext)] : [])),
      atMs: nowMs(),
    };
  });

  host.on("GET", "factories/:name", async ({ req, params }) => {
    host.reader(req);
    const view = await grid.runtime.readState(ref("factory", params.name!));
    if (!view) throw new HttpError(404, "NOT_FOUND", `factory ${params.name} does not exist`);
    return factoryView(view.context as FactoryContext);
  });
}
