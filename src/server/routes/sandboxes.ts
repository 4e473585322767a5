/**
 * Sandboxes over HTTP. `/sandboxes/<sha256>`: HEAD (is it there for me?), GET
 * (its bytes, to owners, operators and pilots) and PUT (upload, users only,
 * within the size limit, checked against the hash); streamed, so outside the
 * JSON API. `GET /api/v1/sandboxes`: the listing, a user's own or, for
 * operators, all.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { sha256HexSchema } from "../../sandbox/sandbox-ref.js";
import { SandboxError, type SandboxStore } from "../../sandbox/sandbox-store.js";
import { CHECKSUM_HEADER, SHA256_HEADER } from "../../transfer/storage-http.js";
import { toHttpError } from "../api.js";
import type { RouteHost } from "../api-routing.js";
import { HttpError, sendError, sendJson } from "../http-util.js";
import type { Principal, TokenRegistry } from "../tokens.js";

/** Answered on every HEAD and on a refused PUT, so a client can check its archive before sending it. */
export const SANDBOX_MAX_BYTES_HEADER = "x-panda-sandbox-max-bytes";
const PREFIX = "/sandboxes/";

export interface SandboxHttpOptions {
  store: SandboxStore;
  tokens: TokenRegistry;
  nowMs(): number;
  onInternalError(err: unknown): void;
  /**
   * Whose is the build job `jobId`'s attempt `attempt`, running at `site`
   * (the user and task its sandbox is for); null when there is no such build
   * job on a pilot of that site.
   */
  buildJob(site: string, jobId: string, attempt: number): Promise<{ user: string; taskId: string } | null>;
}

const buildUploadQuerySchema = z.object({
  job: z.string().min(1).max(256),
  attempt: z.coerce.number().int().positive(),
});

const SANDBOX_STATUS: Record<SandboxError["code"], number> = { SANDBOX_NOT_FOUND: 404, TOO_LARGE: 413 };

/** `/sandboxes/<sha256>`; false (untouched) for any other URL. */
export function createSandboxHandler(
  options: SandboxHttpOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const pathname = (req.url ?? "").split("?")[0] ?? "";
    if (!pathname.startsWith(PREFIX)) return false;
    serve(options, pathname.slice(PREFIX.length), req, res).catch((err: unknown) => {
      const failure =
        err instanceof SandboxError
          ? new HttpError(SANDBOX_STATUS[err.code], err.code, err.message, err.details)
          : toHttpError(err);
      if (failure.status >= 500) options.onInternalError(err);
      // Answered already (a refusal sent while the upload was still arriving): the socket is all there is left to end.
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // An unread upload body would otherwise be left on a connection we cannot trust.
      if (req.method === "PUT" && !req.readableEnded) res.setHeader("connection", "close");
      res.setHeader(SANDBOX_MAX_BYTES_HEADER, String(options.store.config.maxBytes));
      sendError(res, failure);
    });
    return true;
  };
}

function principalOf(options: SandboxHttpOptions, req: IncomingMessage): Principal {
  const principal = options.tokens.fromRequest(req);
  if (principal) return principal;
  throw new HttpError(
    401,
    "UNAUTHORIZED",
    req.headers.authorization
      ? "the token is not known"
      : "a token is required: Authorization: Bearer <token>",
  );
}

/** Whose sandboxes a principal may read: `null` for all (pilots, operators), else the user's own. */
function readerScope(principal: Principal): string | null {
  if (principal.kind === "pilot" || principal.role !== "user") return null;
  return principal.user;
}

async function serve(
  options: SandboxHttpOptions,
  rest: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const sha256 = sha256HexSchema.safeParse(rest);
  if (!sha256.success) {
    throw new HttpError(
      400,
      "BAD_PATH",
      `${JSON.stringify(rest)} in the URL is not a sandbox's sha256 (64 lowercase hex digits)`,
    );
  }
  const principal = principalOf(options, req);
  const hash = sha256.data;
  if (req.method === "PUT") return upload(options, await uploaderOf(options, principal, req), hash, req, res);
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD, PUT");
    throw new HttpError(405, "METHOD_NOT_ALLOWED", `method ${req.method} not allowed on sandboxes`);
  }
  const found = await options.store.find(hash, readerScope(principal));
  if (found === null)
    throw new SandboxError("SANDBOX_NOT_FOUND", `no sandbox ${hash} (or not yours)`, { sha256: hash });
  const headers = {
    "content-type": "application/gzip",
    "content-length": found.sizeBytes,
    [CHECKSUM_HEADER]: `sha256:${hash}`,
    [SHA256_HEADER]: hash,
    [SANDBOX_MAX_BYTES_HEADER]: options.store.config.maxBytes,
  };
  if (req.method === "HEAD") {
    res.writeHead(200, headers).end();
    return;
  }
  const body = await options.store.open(hash, options.nowMs());
  res.writeHead(200, headers);
  await pipeline(body, res);
}

/**
 * Who an upload is for: a user uploads their own; a pilot only a build job's
 * product, named in the query (`?job=<jobId>&attempt=<n>`), for that job's user.
 */
async function uploaderOf(
  options: SandboxHttpOptions,
  principal: Principal,
  req: IncomingMessage,
): Promise<{ user: string; taskId: string | null }> {
  if (principal.kind === "user") return { user: principal.user, taskId: null };
  const url = new URL(req.url ?? "/", "http://localhost");
  const query = buildUploadQuerySchema.safeParse(Object.fromEntries(url.searchParams));
  if (!query.success) {
    throw new HttpError(
      403,
      "FORBIDDEN",
      "a pilot uploads only a build job's sandbox: ?job=<jobId>&attempt=<n>",
    );
  }
  const owner = await options.buildJob(principal.site, query.data.job, query.data.attempt);
  if (owner === null) {
    throw new HttpError(
      403,
      "FORBIDDEN",
      `job ${query.data.job} attempt ${query.data.attempt} is not a build job running at site ${principal.site}`,
    );
  }
  return owner;
}

async function upload(
  options: SandboxHttpOptions,
  uploader: { user: string; taskId: string | null },
  sha256: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const lengthText = req.headers["content-length"];
  if (lengthText === undefined) {
    throw new HttpError(411, "LENGTH_REQUIRED", "header content-length is required", {
      header: "content-length",
    });
  }
  const sizeBytes = Number(lengthText);
  if (!/^\d+$/.test(lengthText) || !Number.isSafeInteger(sizeBytes) || sizeBytes === 0) {
    throw new HttpError(
      400,
      "BAD_SIZE",
      `header content-length ${JSON.stringify(lengthText)} is not a positive size`,
      {
        header: "content-length",
      },
    );
  }
  const nowMs = options.nowMs();
  const answer = await options.store.put({ sha256, sizeBytes }, req, uploader.user, nowMs);
  if (uploader.taskId !== null)
    await options.store.useForTask({ sha256, sizeBytes }, uploader.user, uploader.taskId, nowMs);
  sendJson(res, answer.created ? 201 : 200, {
    sha256,
    sizeBytes,
    checksum: `sha256:${sha256}`,
    created: answer.created,
  });
}

const sandboxesQuerySchema = z.object({
  /** Operators: every user's sandboxes (`all`), or their own (`mine`, the default for everyone). */
  scope: z.enum(["mine", "all"]).default("mine"),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

/** `GET /api/v1/sandboxes`: a user's own; an operator's `?scope=all` lists everyone's. */
export function registerSandboxRoutes(host: RouteHost, store: SandboxStore | null): void {
  host.on("GET", "sandboxes", async ({ req, url }) => {
    const user = host.user(req);
    const { scope, limit } = host.parseQuery(sandboxesQuerySchema, url);
    if (scope === "all" && user.role === "user") {
      throw new HttpError(
        403,
        "FORBIDDEN",
        `listing every user's sandboxes needs the operator or admin role; ${user.user} is user`,
      );
    }
    if (store === null) return { sandboxes: [], maxBytes: null, retentionMs: null };
    const sandboxes = await store.list(scope === "all" ? null : user.user, limit);
    return { sandboxes, maxBytes: store.config.maxBytes, retentionMs: store.config.retentionMs };
  });
}
