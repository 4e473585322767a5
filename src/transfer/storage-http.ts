/**
 * A site's storage element over HTTP (`/storage/:site/...`): GET, HEAD and PUT,
 * each authorized as a read or a write, with the file's checksum in a header both ways.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { parseChecksum } from "./checksum.js";
import {
  isStorageError,
  type StorageElement,
  type StorageErrorCode,
  type StoredFile,
} from "./storage-element.js";

export type StorageOperation = "read" | "write";

/**
 * Decides whether a request may read or write a site's storage. A refusal is
 * answered 401 when the request carried no Authorization header and 403 when
 * it did (authenticated, not allowed).
 */
export type StorageAuthorizer = (
  req: IncomingMessage,
  site: string,
  operation: StorageOperation,
) => boolean | Promise<boolean>;

export interface StorageHttpOptions {
  elements: ReadonlyMap<string, StorageElement>;
  authorize: StorageAuthorizer;
  maxPutBytes: number;
  /** Where the routes live; `/storage` serves `/storage/:site/<path>`. */
  basePath?: string;
  /** Told about failures that are not the client's fault, before a 500 goes out. */
  onInternalError?: (err: unknown, req: IncomingMessage) => void;
}

/** The header carrying a file's checksum both ways: required on PUT, answered on GET and HEAD. */
export const CHECKSUM_HEADER = "x-panda-checksum";
export const SHA256_HEADER = "x-panda-sha256";

const STATUS_BY_STORAGE_CODE: Record<StorageErrorCode, number> = {
  BAD_PATH: 400,
  BAD_CHECKSUM: 400,
  BAD_SIZE: 400,
  NOT_FOUND: 404,
  EXISTS: 409,
  TOO_LARGE: 413,
  SIZE_MISMATCH: 422,
  CHECKSUM_MISMATCH: 422,
};

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * A request handler for Node's http server serving GET, HEAD and PUT on
 * `<basePath>/:site/<path>`. Answers false (untouched) for other URLs so it can
 * sit in front of other handlers; errors go out as `{error:{code,message,details}}`.
 */
export function createStorageHandler(
  options: StorageHttpOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const prefix = `${(options.basePath ?? "/storage").replace(/\/+$/, "")}/`;
  return (req, res) => {
    const pathname = (req.url ?? "").split("?")[0] ?? "";
    if (!pathname.startsWith(prefix)) return false;
    serve(options, pathname.slice(prefix.length), req, res).catch((err: unknown) => {
      if (!(err instanceof HttpFailure) && !isStorageError(err)) options.onInternalError?.(err, req);
      sendFailure(req, res, toHttpFailure(err));
    });
    return true;
  };
}

async function serve(
  options: StorageHttpOptions,
  rest: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { site, path } = splitSiteAndPath(rest);
  const operation = operationFor(req.method);
  if (!(await options.authorize(req, site, operation))) {
    if (req.headers.authorization === undefined) {
      throw new HttpFailure(
        401,
        "UNAUTHENTICATED",
        "credentials required",
        {},
        { "www-authenticate": "Bearer" },
      );
    }
    throw new HttpFailure(403, "FORBIDDEN", `not allowed to ${operation} storage of site ${site}`);
  }
  const element = options.elements.get(site);
  if (element === undefined) {
    throw new HttpFailure(404, "UNKNOWN_SITE", `no storage for site ${site}`, { site });
  }
  if (operation === "write") return putFile(options, element, path, req, res);
  return serveFile(element, path, req.method === "HEAD", res);
}

function splitSiteAndPath(rest: string): { site: string; path: string } {
  const slash = rest.indexOf("/");
  const rawSite = slash < 0 ? rest : rest.slice(0, slash);
  const rawPath = slash < 0 ? "" : rest.slice(slash + 1);
  const site = decode(rawSite);
  if (site === "") throw new HttpFailure(400, "BAD_PATH", "missing site in the URL");
  return { site, path: decode(rawPath) };
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new HttpFailure(400, "BAD_PATH", `malformed percent-encoding in ${JSON.stringify(component)}`);
  }
}

function operationFor(method: string | undefined): StorageOperation {
  if (method === "GET" || method === "HEAD") return "read";
  if (method === "PUT") return "write";
  throw new HttpFailure(
    405,
    "METHOD_NOT_ALLOWED",
    `method ${method} not allowed`,
    {},
    { allow: "GET, HEAD, PUT" },
  );
}

function fileHeaders(file: StoredFile): Record<string, string | number> {
  return {
    "content-type": "application/octet-stream",
    "content-length": file.sizeBytes,
    [CHECKSUM_HEADER]: file.checksum,
    [SHA256_HEADER]: file.sha256,
  };
}

async function serveFile(element: StorageElement, path: string, headOnly: boolean, res: ServerResponse) {
  const file = await element.stat(path);
  if (file === null) throw new HttpFailure(404, "NOT_FOUND", `no file at ${path}`, { path });
  if (headOnly) {
    res.writeHead(200, fileHeaders(file)).end();
    return;
  }
  const stream = await element.get(path);
  res.writeHead(200, fileHeaders(file));
  await pipeline(stream, res);
}

async function putFile(
  options: StorageHttpOptions,
  element: StorageElement,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const checksumText = req.headers[CHECKSUM_HEADER];
  if (typeof checksumText !== "string" || parseChecksum(checksumText) === null) {
    throw new HttpFailure(
      400,
      "BAD_CHECKSUM",
      `header ${CHECKSUM_HEADER} must be adler32:<8 hex> or sha256:<64 hex>`,
      { header: CHECKSUM_HEADER, value: checksumText ?? null },
    );
  }
  const lengthText = req.headers["content-length"];
  if (lengthText === undefined) {
    throw new HttpFailure(411, "LENGTH_REQUIRED", "header content-length is required", {
      header: "content-length",
    });
  }
  const sizeBytes = Number(lengthText);
  if (!/^\d+$/.test(lengthText) || !Number.isSafeInteger(sizeBytes)) {
    throw new HttpFailure(
      400,
      "BAD_SIZE",
      `header content-length ${JSON.stringify(lengthText)} is not a size`,
      {
        header: "content-length",
      },
    );
  }
  if (sizeBytes > options.maxPutBytes) {
    throw new HttpFailure(
      413,
      "TOO_LARGE",
      `${sizeBytes} bytes exceeds the limit of ${options.maxPutBytes}`,
      {
        sizeBytes,
        maxPutBytes: options.maxPutBytes,
      },
    );
  }
  const result = await element.put(path, req, { sizeBytes, checksum: checksumText });
  sendJson(res, result.created ? 201 : 200, { path, ...result });
}

function toHttpFailure(err: unknown): HttpFailure {
  if (err instanceof HttpFailure) return err;
  if (isStorageError(err)) {
    return new HttpFailure(STATUS_BY_STORAGE_CODE[err.code], err.code, err.message, {
      path: err.path,
      ...err.details,
    });
  }
  return new HttpFailure(500, "INTERNAL", "internal storage error");
}

function sendFailure(req: IncomingMessage, res: ServerResponse, failure: HttpFailure): void {
  if (res.headersSent) {
    // Mid-body there is no way to say what went wrong; cutting the connection at least says it did.
    res.destroy();
    return;
  }
  const headers = { ...failure.headers };
  // An unread upload body would otherwise be drained (or left) on a connection we cannot trust.
  if (req.method === "PUT" && !req.readableEnded) headers["connection"] = "close";
  const body = { error: { code: failure.code, message: failure.message, details: failure.details } };
  sendJson(res, failure.status, body, headers);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
