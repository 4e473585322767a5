/**
 * The CLI's HTTP client of the API under `/api/v1`: one method per call, each
 * answer checked against its schema (`api-answers.ts`), every failure a
 * CliError carrying its exit code.
 */

import { z } from "zod";
import {
  actorViewSchema,
  createdTokenSchema,
  type DatasetRow,
  datasetDetailSchema,
  datasetRowSchema,
  demandAnswerSchema,
  drainAnswerSchema,
  errorAnswerSchema,
  type FactoryRow,
  factoryRowSchema,
  type JobRow,
  type JobsQuery,
  jobsAnswerSchema,
  okAnswerSchema,
  pilotJobAnswerSchema,
  pilotJobRowSchema,
  reassignAnswerSchema,
  type SiteRow,
  sandboxListSchema,
  sandboxUploadSchema,
  siteRowSchema,
  storedFileSchema,
  submitAnswerSchema,
  type TaskRow,
  type TokenRow,
  taskDetailSchema,
  tasksAnswerSchema,
  tokenRowSchema,
  whyAnswerSchema,
} from "./api-answers.js";
import type { Connection } from "./config.js";
import { CliError, EXIT, type ExitCode } from "./errors.js";

export {
  type ActorViewAnswer,
  actorViewSchema,
  type DatasetDetail,
  type DatasetRow,
  datasetDetailSchema,
  datasetRowSchema,
  type FactoryRow,
  factoryRowSchema,
  type HistoryRow,
  historyEntrySchema,
  type JobRow,
  type JobsQuery,
  jobRowSchema,
  type PilotJobRow,
  pilotJobRowSchema,
  type SiteRow,
  siteRowSchema,
  submitAnswerSchema,
  type TaskDetail,
  type TaskRow,
  type TokenRow,
  taskRowSchema,
  tokenRowSchema,
  whyAnswerSchema,
} from "./api-answers.js";

type Query = Record<string, string | number | undefined>;

interface RequestOptions {
  query?: Query;
  json?: unknown;
  bytes?: Uint8Array;
  headers?: Record<string, string>;
}

const REQUEST_TIMEOUT_MS = 60_000;

function exitCodeForStatus(status: number): ExitCode {
  if (status === 400) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  return EXIT.failed;
}

const STATUS_HINTS: Partial<Record<number, string>> = {
  401: "pass --token or set PANDA_TOKEN (`panda up` writes an admin token to .panda/local.json)",
  409: "the actor is not in a state that takes this: `panda inspect` shows where it is",
  403: "this token may not do that: use a token with the needed role",
};

/** The HTTP API under `/api/v1`, with every failure turned into a CliError that carries its exit code. */
export class PandaClient {
  constructor(private readonly connection: Connection) {}

  get server(): string {
    return this.connection.server;
  }

  submitTask(submission: unknown) {
    return this.request(submitAnswerSchema, "POST", "/api/v1/tasks", { json: submission });
  }

  async listTasks(
    query: { user?: string | undefined; state?: string | undefined; limit?: number | undefined } = {},
  ): Promise<TaskRow[]> {
    return (await this.request(tasksAnswerSchema, "GET", "/api/v1/tasks", { query: { ...query } })).tasks;
  }

  async listJobs(query: JobsQuery = {}): Promise<JobRow[]> {
    return (await this.listJobsPage(query)).jobs;
  }

  /** One page of jobs and the offset of the next (null after the last). */
  listJobsPage(query: JobsQuery = {}) {
    return this.request(jobsAnswerSchema, "GET", "/api/v1/jobs", { query: { ...query } });
  }

  getTask(taskId: string) {
    return this.request(taskDetailSchema, "GET", `/api/v1/tasks/${encodeURIComponent(taskId)}`);
  }

  kill(kind: "job" | "task", id: string, reason?: string) {
    const path = `/api/v1/${kind}s/${encodeURIComponent(id)}/kill`;
    return this.request(okAnswerSchema, "POST", path, { json: reason ? { reason } : {} });
  }

  reassign(kind: "job" | "task", id: string, change: { site?: string; reason?: string }) {
    const path = `/api/v1/${kind}s/${encodeURIComponent(id)}/reassign`;
    return this.request(reassignAnswerSchema, "POST", path, { json: change });
  }

  drainSite(site: string, reason?: string) {
    const path = `/api/v1/sites/${encodeURIComponent(site)}/drain`;
    return this.request(drainAnswerSchema, "POST", path, { json: reason ? { reason } : {} });
  }

  retryTask(taskId: string) {
    return this.request(submitAnswerSchema, "POST", `/api/v1/tasks/${encodeURIComponent(taskId)}/retry`, {
      json: {},
    });
  }

  why(jobId: string) {
    return this.request(whyAnswerSchema, "GET", `/api/v1/jobs/${encodeURIComponent(jobId)}/why`);
  }

  async listSites(): Promise<SiteRow[]> {
    return (await this.request(z.looseObject({ sites: z.array(siteRowSchema) }), "GET", "/api/v1/sites"))
      .sites;
  }

  setSiteStatus(site: string, status: string, reason: string) {
    return this.request(okAnswerSchema, "POST", `/api/v1/sites/${encodeURIComponent(site)}/status`, {
      json: { status, reason },
    });
  }

  async listDatasets(pattern: string, limit?: number): Promise<DatasetRow[]> {
    const answer = z.looseObject({ datasets: z.array(datasetRowSchema) });
    return (await this.request(answer, "GET", "/api/v1/datasets", { query: { pattern, limit } })).datasets;
  }

  getDataset(name: string) {
    return this.request(datasetDetailSchema, "GET", `/api/v1/datasets/${encodeURIComponent(name)}`);
  }

  subscribe(dataset: string, site: string) {
    const answer = z.looseObject({ subscription: z.string(), files: z.number(), created: z.boolean() });
    return this.request(answer, "POST", `/api/v1/datasets/${encodeURIComponent(dataset)}/subscriptions`, {
      json: { site },
    });
  }

  createToken(
    spec: ({ kind: "user"; user: string; role: string } | { kind: "pilot"; site: string }) & {
      ttlSec?: number;
    },
  ) {
    return this.request(createdTokenSchema, "POST", "/api/v1/tokens", { json: spec });
  }

  async listTokens(): Promise<TokenRow[]> {
    return (await this.request(z.looseObject({ tokens: z.array(tokenRowSchema) }), "GET", "/api/v1/tokens"))
      .tokens;
  }

  revokeToken(tokenId: string) {
    return this.request(okAnswerSchema, "DELETE", `/api/v1/tokens/${encodeURIComponent(tokenId)}`);
  }

  siteDemand(site: string) {
    return this.request(demandAnswerSchema, "GET", `/api/v1/sites/${encodeURIComponent(site)}/demand`);
  }

  mintPilotToken(site: string, pilotJobId: string, ttlSec: number) {
    const answer = z.looseObject({ token: z.string(), expiresAtMs: z.number() });
    return this.request(answer, "POST", `/api/v1/sites/${encodeURIComponent(site)}/pilot-tokens`, {
      json: { pilotJobId, ttlSec },
    });
  }

  /** Creates the record when it is new, then applies the event (if any); `eventId` makes a retry harmless. */
  putPilotJob(id: string, body: { record: unknown; event?: unknown; eventId?: string }) {
    return this.request(pilotJobAnswerSchema, "PUT", `/api/v1/pilot-jobs/${encodeURIComponent(id)}`, {
      json: body,
    });
  }

  async listPilotJobs(query: { factory?: string; site?: string; live?: boolean; limit?: number } = {}) {
    const answer = z.looseObject({ pilotJobs: z.array(pilotJobRowSchema) });
    const { live, ...rest } = query;
    return (
      await this.request(answer, "GET", "/api/v1/pilot-jobs", {
        query: { ...rest, ...(live === undefined ? {} : { live: String(live) }) },
      })
    ).pilotJobs;
  }

  reportFactoryQueue(factory: string, report: { queue: { name: string } }) {
    const path = `/api/v1/factories/${encodeURIComponent(factory)}/queues/${encodeURIComponent(report.queue.name)}`;
    return this.request(okAnswerSchema, "PUT", path, { json: report });
  }

  async listFactories(): Promise<FactoryRow[]> {
    const answer = z.looseObject({ factories: z.array(factoryRowSchema) });
    return (await this.request(answer, "GET", "/api/v1/factories")).factories;
  }

  async listIncidents(query: { source?: string; site?: string; limit?: number } = {}) {
    const answer = z.looseObject({
      incidents: z.array(
        z.looseObject({
          atMs: z.number(),
          level: z.string(),
          site: z.string().nullable(),
          message: z.string(),
        }),
      ),
    });
    return (await this.request(answer, "GET", "/api/v1/incidents", { query: { ...query } })).incidents;
  }

  getFactory(name: string) {
    return this.request(factoryRowSchema, "GET", `/api/v1/factories/${encodeURIComponent(name)}`);
  }

  whoami() {
    return this.request(z.looseObject({ principal: z.looseObject({}).nullable() }), "GET", "/api/v1/whoami");
  }

  get token(): string | undefined {
    return this.connection.token;
  }

  inspectActor(kind: string, id: string, options: { history?: number; atMs?: number } = {}) {
    const path = `/api/v1/actors/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`;
    return this.request(actorViewSchema, "GET", path, {
      query: { history: options.history, at: options.atMs },
    });
  }

  /**
   * Whether the server holds this sandbox for the caller (HEAD: nothing is
   * sent), and the server's size limit for sandboxes.
   */
  async probeSandbox(sha256: string): Promise<{ present: boolean; maxBytes: number | null }> {
    const path = `/sandboxes/${sha256}`;
    let response: Response;
    try {
      response = await fetch(new URL(this.connection.server + path), {
        method: "HEAD",
        headers: this.authHeaders(),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (response.status !== 200 && response.status !== 404)
      throw this.refused("HEAD", path, response.status, null);
    const limit = Number(response.headers.get("x-panda-sandbox-max-bytes"));
    return {
      present: response.status === 200,
      maxBytes: Number.isSafeInteger(limit) && limit > 0 ? limit : null,
    };
  }

  /** Uploads a sandbox archive under its sha256 (the server checks the bytes against it). */
  uploadSandbox(sha256: string, bytes: Uint8Array) {
    return this.request(sandboxUploadSchema, "PUT", `/sandboxes/${sha256}`, {
      bytes,
      headers: { "content-type": "application/gzip" },
    });
  }

  listSandboxes(scope: "mine" | "all") {
    return this.request(sandboxListSchema, "GET", "/api/v1/sandboxes", { query: { scope } });
  }

  /** Stores one file at a site and registers it in a dataset (created on first use). */
  putFile(dataset: string, site: string, lfn: string, bytes: Uint8Array, checksum?: string) {
    return this.request(storedFileSchema, "POST", `/api/v1/datasets/${encodeURIComponent(dataset)}/files`, {
      query: { site, lfn },
      bytes,
      headers: {
        "content-type": "application/octet-stream",
        ...(checksum ? { "x-panda-checksum": checksum } : {}),
      },
    });
  }

  private async request<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<z.output<S>> {
    const url = new URL(this.connection.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { ...this.authHeaders(), ...options.headers };
    let body: string | Uint8Array | undefined = options.bytes;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await response.text();
    let answer: unknown;
    try {
      answer = text === "" ? null : JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (!response.ok) throw this.refused(method, path, response.status, answer);
    const parsed = schema.safeParse(answer);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CliError(
        EXIT.failed,
        `unexpected answer to ${method} ${path} from ${this.connection.server} (${issue?.path.join(".")}: ${issue?.message}): is it a panda server of this version?`,
      );
    }
    return parsed.data;
  }

  private authHeaders(): Record<string, string> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    return headers;
  }

  private unreachable(err: unknown): CliError {
    const { server, serverSource } = this.connection;
    if ((err as Error).name === "TimeoutError") {
      return new CliError(
        EXIT.failed,
        `the server at ${server} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`,
      );
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (err as Error).message;
    return new CliError(
      EXIT.failed,
      `cannot reach the server at ${server} (${reason}; the URL came from ${serverSource}): is \`panda up\` running?`,
    );
  }

  private refused(method: string, path: string, status: number, answer: unknown): CliError {
    const parsed = errorAnswerSchema.safeParse(answer);
    const what = parsed.success
      ? `${parsed.data.error.message} (${parsed.data.error.code})`
      : `HTTP ${status}`;
    const hint = STATUS_HINTS[status];
    return new CliError(
      exitCodeForStatus(status),
      `${method} ${path} was refused: ${what}${hint ? `: ${hint}` : ""}`,
    );
  }
}
