/**
 * The JSON API's few needs of node:http (answers, errors as
 * `{error:{code,message,details}}`, bodies read within a size limit), in one
 * place so every route answers and refuses the same way without a framework.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpStatusError } from "../protocol/coded-error.js";

/** An API failure with the HTTP status and the `{error:{code,message,details}}` body it becomes. */
export class HttpError extends HttpStatusError {
  override readonly name = "HttpError";
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, error.status, {
    error: { code: error.code, message: error.message, details: error.details },
  });
}

/** Reads a whole body, refusing more than `maxBytes` (413) before buffering it. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new HttpError(413, "TOO_LARGE", `body of ${declared} bytes exceeds the limit of ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > maxBytes)
      throw new HttpError(413, "TOO_LARGE", `body exceeds the limit of ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(req, maxBytes);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "MALFORMED", `body is not valid JSON: ${(err as Error).message}`);
  }
}
