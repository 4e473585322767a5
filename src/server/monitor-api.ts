/**
 * Read-only routes the web monitor needs beyond the main API: sites with what
 * only this node knows (pilots, queue depths, the starved flag), chart
 * samples and job logs. They are as open as the API's reads: `mayRead` says
 * whether a request may read (a user token when the server asks for one).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { JOB_STATES } from "../actors/job/schema.js";
import { jobLogLocation, openJobLog, tailOf } from "../monitor/job-log.js";
import { DEFAULT_SAMPLER_OPTIONS, Sampler, type SamplerOptions } from "../monitor/sampler.js";
import type { PilotView } from "../monitor/shapes.js";
import { readSiteViews } from "../monitor/site-view.js";
import { readContext } from "../workload/context.js";
import type { Grid } from "../workload/grid.js";
import { toHttpError } from "./api.js";
import { HttpError, sendError, sendJson } from "./http-util.js";

const PREFIX = "/api/v1/monitor/";

const seriesQuerySchema = z.object({ since: z.coerce.number().nonnegative().default(0) });
const logQuerySchema = z.object({
  tail: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024 * 1024)
    .optional(),
});

function query<S extends z.ZodType>(schema: S, url: URL): z.output<S> {
  const parsed = schema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) throw new HttpError(400, "BAD_QUERY", parsed.error.message);
  return parsed.data;
}

export class MonitorApi {
  readonly sampler: Sampler;

  constructor(
    private readonly grid: Grid,
    private readonly pilots: () => PilotView[],
    private readonly mayRead: (req: IncomingMessage) => boolean,
    samplerOptions: SamplerOptions = DEFAULT_SAMPLER_OPTIONS,
  ) {
    this.sampler = new Sampler(
      (listener) => grid.runtime.onTransitions(listener),
      () => this.sites(),
      () => grid.runtime.clock.nowMs(),
      samplerOptions,
    );
  }

  /** Handles `GET /api/v1/monitor/...`; false for any other request. */
  handle(req: IncomingMessage, res: ServerResponse, onError: (err: unknown) => void): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith(PREFIX) || req.method !== "GET") return false;
    if (!this.mayRead(req)) {
      sendError(res, new HttpError(401, "UNAUTHORIZED", "this server needs a user token to read"));
      return true;
    }
    this.route(res, url).catch((err: unknown) => {
      const httpError = toHttpError(err);
      if (httpError.status >= 500) onError(err);
      sendError(res, httpError);
    });
    return true;
  }

  close(): void {
    this.sampler.close();
  }

  private sites() {
    return readSiteViews(this.grid.ctx, this.pilots());
  }

  private async route(res: ServerResponse, url: URL): Promise<void> {
    const [resource, id, action] = url.pathname
      .slice(PREFIX.length)
      .split("/")
      .filter(Boolean)
      .map(decodeURIComponent);
    const nowMs = this.grid.runtime.clock.nowMs();
    if (resource === "sites" && !id) return sendJson(res, 200, { nowMs, sites: await this.sites() });
    if (resource === "sites" && id) {
      const site = (await this.sites()).find((s) => s.name === id);
      if (!site) throw new HttpError(404, "NOT_FOUND", `site ${id} does not exist`);
      return sendJson(res, 200, { nowMs, site });
    }
    if (resource === "series" && !id) {
      const { since } = query(seriesQuerySchema, url);
      return sendJson(res, 200, {
        nowMs,
        everyMs: this.sampler.options.everyMs,
        samples: this.sampler.since(since),
      });
    }
    // The job states in lifecycle order, so the browser's filters need no copy of the list.
    if (resource === "job-states" && !id) return sendJson(res, 200, { states: JOB_STATES });
    if (resource === "jobs" && id && action === "log")
      return this.sendLog(res, id, query(logQuerySchema, url));
    throw new HttpError(404, "NOT_FOUND", `no route GET ${url.pathname}`);
  }

  /** The job's log as plain text, whole (streamed) or its last `tail` bytes. */
  private async sendLog(res: ServerResponse, jobId: string, { tail }: { tail?: number | undefined }) {
    const job = await readContext(this.grid.ctx, "job", jobId);
    if (!job) throw new HttpError(404, "NOT_FOUND", `job ${jobId} does not exist`);
    const location = jobLogLocation(job.context);
    const stream = location ? await openJobLog(this.grid.ctx.storage, location) : null;
    if (!location || !stream) throw new HttpError(404, "NOT_FOUND", `job ${jobId} has no log in storage`);
    const headers = {
      "content-type": "text/plain; charset=utf-8",
      "x-panda-log": `/storage/${encodeURIComponent(location.site)}/${location.lfn}`,
    };
    if (tail !== undefined) {
      const { text, truncated } = await tailOf(stream, tail);
      res.writeHead(200, { ...headers, "x-panda-truncated": String(truncated) });
      res.end(text);
      return;
    }
    res.writeHead(200, headers);
    await pipeline(stream, res);
  }
}
