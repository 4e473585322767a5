/**
 * The client side of storage over HTTP: downloads and uploads that stream,
 * time out when silent and check what arrived against the expected checksum.
 */

import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { dirname } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { HttpStatusError } from "../protocol/coded-error.js";
import { checksumOfStream, createFileDigester, type FileDigest, parseChecksum } from "./checksum.js";
import { type ExpectedFile, hasChecksum, type PutResult, StorageError } from "./storage-element.js";
import { CHECKSUM_HEADER } from "./storage-http.js";
import { storagePathSegments } from "./storage-path.js";

export interface HttpRequestOptions {
  headers?: Record<string, string>;
  /** The request fails when its connection is silent this long. */
  idleTimeoutMs?: number;
}

export interface DownloadOptions extends HttpRequestOptions {
  /** Checked against what arrived; the server's own checksum header is checked too. */
  expected?: Partial<ExpectedFile>;
}

export interface UploadOptions extends HttpRequestOptions {
  /** Computed from the file (one extra read) when not given. */
  checksum?: string;
}

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The storage server refused a request; `code` is the server's error code. */
export class StorageHttpError extends HttpStatusError {
  override readonly name = "StorageHttpError";
}

const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).default({}),
  }),
});

const PutResultSchema = z.object({
  sizeBytes: z.number(),
  checksum: z.string(),
  sha256: z.string(),
  created: z.boolean(),
});

/**
 * The URL of a file on a storage server, each path segment encoded. The path is
 * checked first: URL parsing would silently resolve `..` to another file.
 */
export function storageUrl(baseUrl: string, site: string, path: string, basePath = "/storage"): string {
  const encodedPath = storagePathSegments(path).map(encodeURIComponent).join("/");
  return `${baseUrl.replace(/\/+$/, "")}${basePath}/${encodeURIComponent(site)}/${encodedPath}`;
}

/**
 * Downloads to `destPath`, which appears only once the bytes are verified:
 * they go to a temp file beside it first and are renamed into place.
 */
export async function downloadFile(
  url: string,
  destPath: string,
  options: DownloadOptions = {},
): Promise<FileDigest> {
  const res = await send("GET", url, options, {});
  if (res.statusCode !== 200) throw await errorFrom(res, "GET", url);
  await mkdir(dirname(destPath), { recursive: true });
  const tempPath = `${destPath}.part-${randomUUID()}`;
  const digester = createFileDigester();
  try {
    await pipeline(
      res,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          digester.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tempPath, { flags: "wx", flush: true }),
    );
    const actual = digester.digest();
    const serverChecksum = res.headers[CHECKSUM_HEADER];
    verifyReceived(
      url,
      actual,
      options.expected ?? {},
      typeof serverChecksum === "string" ? serverChecksum : undefined,
    );
    await rename(tempPath, destPath);
    return actual;
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
}

/** Refuses downloaded bytes whose size or checksum is not what was expected (or what the server claimed). */
export function verifyReceived(
  url: string,
  actual: FileDigest,
  expected: Partial<ExpectedFile>,
  serverChecksum?: string,
): void {
  if (expected.sizeBytes !== undefined && expected.sizeBytes !== actual.sizeBytes) {
    throw new StorageError(
      "SIZE_MISMATCH",
      url,
      `${url}: received ${actual.sizeBytes} bytes, expected ${expected.sizeBytes}`,
      {
        expectedBytes: expected.sizeBytes,
        actualBytes: actual.sizeBytes,
      },
    );
  }
  const claims = [expected.checksum, serverChecksum];
  for (const claim of claims) {
    if (claim === undefined) continue;
    const wanted = parseChecksum(claim);
    if (wanted === null) {
      throw new StorageError("BAD_CHECKSUM", url, `${url}: ${JSON.stringify(claim)} is not a checksum`);
    }
    if (!hasChecksum(actual, claim)) {
      // Named in the claim's algorithm, so the two can be compared (a sandbox is claimed by sha256).
      const received = wanted.algorithm === "adler32" ? actual.checksum : actual.sha256;
      throw new StorageError("CHECKSUM_MISMATCH", url, `${url}: received ${received}, expected ${claim}`, {
        expected: claim,
        actual: received,
      });
    }
  }
}

/** Uploads a file; answers what the server stored (created false when it already held the same file). */
export async function uploadFile(
  url: string,
  sourcePath: string,
  options: UploadOptions = {},
): Promise<PutResult> {
  const { size } = await stat(sourcePath);
  const checksum = options.checksum ?? (await checksumOfStream(createReadStream(sourcePath))).checksum;
  const headers = { "content-length": String(size), [CHECKSUM_HEADER]: checksum };
  const res = await send("PUT", url, options, headers, createReadStream(sourcePath));
  if (res.statusCode !== 200 && res.statusCode !== 201) throw await errorFrom(res, "PUT", url);
  const parsed = PutResultSchema.safeParse(parseJson(await readBody(res)));
  if (!parsed.success)
    throw new StorageHttpError(res.statusCode, "BAD_RESPONSE", `PUT ${url}: unexpected reply`);
  return parsed.data;
}

/**
 * Sends one request and answers the response as soon as its head arrives. A
 * server may answer (and close) before the whole body is sent, as it does when
 * refusing an upload; the answer is what counts, not the broken pipe after it.
 */
function send(
  method: string,
  url: string,
  options: HttpRequestOptions,
  headers: Record<string, string>,
  body?: Readable,
): Promise<IncomingMessage> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : target.protocol === "http:" ? http : undefined;
  if (transport === undefined) return Promise.reject(new Error(`unsupported URL scheme in ${url}`));
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const req = transport.request(target, { method, headers: { ...options.headers, ...headers } }, resolve);
    req.setTimeout(idleTimeoutMs, () =>
      req.destroy(new Error(`${method} ${url}: no activity for ${idleTimeoutMs} ms`)),
    );
    req.on("error", reject);
    if (body === undefined) {
      req.end();
      return;
    }
    body.on("error", (err) => req.destroy(err));
    req.on("close", () => body.destroy());
    body.pipe(req);
  });
}

async function readBody(res: IncomingMessage, limitBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > limitBytes) {
      res.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}

async function errorFrom(res: IncomingMessage, method: string, url: string): Promise<StorageHttpError> {
  const status = res.statusCode ?? 0;
  const body = await readBody(res, MAX_ERROR_BODY_BYTES).catch(() => Buffer.alloc(0));
  const parsed = ErrorBodySchema.safeParse(parseJson(body));
  if (!parsed.success)
    return new StorageHttpError(status, `HTTP_${status}`, `${method} ${url}: HTTP ${status}`);
  const { code, message, details } = parsed.data.error;
  return new StorageHttpError(status, code, `${method} ${url}: ${message}`, details);
}
