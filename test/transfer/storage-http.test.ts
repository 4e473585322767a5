import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import http, { type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CHECKSUM_HEADER,
  checksumOfBytes,
  createStorageHandler,
  DirectoryStorageElement,
  downloadFile,
  type StorageAuthorizer,
  StorageError,
  StorageHttpError,
  storageUrl,
  uploadFile,
} from "../../src/transfer/index.js";
import { bytes, rejectionOf, useTempDirs } from "./helpers.js";

const tempDir = useTempDirs();
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

const MAX_PUT_BYTES = 1_000_000;
const TOKEN = "secret-token";

/** Reads need no credential; writes need the bearer token. */
const tokenForWrites: StorageAuthorizer = (req, _site, operation) =>
  operation === "read" || req.headers.authorization === `Bearer ${TOKEN}`;

const WRITER = { headers: { authorization: `Bearer ${TOKEN}` } };

async function startServer(authorize: StorageAuthorizer = tokenForWrites) {
  const root = await tempDir();
  const se = new DirectoryStorageElement(root);
  const handle = createStorageHandler({
    elements: new Map([["CERN", se]]),
    authorize,
    maxPutBytes: MAX_PUT_BYTES,
  });
  const server = http.createServer((req, res) => {
    if (!handle(req, res)) res.writeHead(418).end("not storage");
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { baseUrl, se, root, workDir: await tempDir() };
}

/**
 * One raw request, for what the client library will not send. The path goes
 * out as written: a URL object would resolve `%2e%2e` segments before sending.
 */
function rawRequest(
  baseUrl: string,
  path: string,
  method: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ status: number; headers: IncomingMessage["headers"]; json: unknown }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ method, headers, hostname, port, path }, async (res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, json: parseJson(Buffer.concat(chunks)) });
    });
    req.on("error", reject);
    if (body) req.write(body);
    // A declared length with no body: send the head only and see how the server answers it.
    if (headers["content-length"] !== undefined && !body) req.flushHeaders();
    else req.end();
  });
}

function parseJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString("utf8"));
  } catch {
    return data.toString("utf8");
  }
}

function clientError(promise: Promise<unknown>): Promise<StorageHttpError> {
  return rejectionOf(promise, StorageHttpError);
}

describe("storage over HTTP", () => {
  it("round-trips a file: upload, HEAD, download with verification", async () => {
    const { baseUrl, se, workDir } = await startServer();
    const data = bytes(300_000, 11);
    const source = join(workDir, "out.root");
    await writeFile(source, data);
    const url = storageUrl(baseUrl, "CERN", "user/alice/out.root");

    const put = await uploadFile(url, source, WRITER);
    expect(put).toMatchObject({ created: true, sizeBytes: data.length, checksum: checksumOfBytes(data) });
    expect(await se.stat("user/alice/out.root")).toMatchObject({ sizeBytes: data.length });
    expect((await uploadFile(url, source, WRITER)).created).toBe(false);

    const head = await rawRequest(baseUrl, "/storage/CERN/user/alice/out.root", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers[CHECKSUM_HEADER]).toBe(checksumOfBytes(data));
    expect(head.headers["content-length"]).toBe(String(data.length));

    const dest = join(workDir, "in", "copy.root");
    const got = await downloadFile(url, dest, {
      expected: { sizeBytes: data.length, checksum: checksumOfBytes(data) },
    });
    expect(got.checksum).toBe(checksumOfBytes(data));
    expect(await readFile(dest)).toEqual(data);
  });

  it("refuses an upload whose checksum does not match, storing nothing (422)", async () => {
    const { baseUrl, se, workDir } = await startServer();
    const source = join(workDir, "f");
    await writeFile(source, bytes(5000));
    const err = await clientError(
      uploadFile(storageUrl(baseUrl, "CERN", "f"), source, { ...WRITER, checksum: "adler32:deadbeef" }),
    );
    expect(err.status).toBe(422);
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(err.details).toMatchObject({ expected: "adler32:deadbeef", path: "f" });
    expect(await se.list("")).toEqual([]);
  });

  it("refuses a download that does not match what was expected, leaving no file", async () => {
    const { baseUrl, se, workDir } = await startServer();
    const data = bytes(1000);
    await se.put("f", data, { sizeBytes: data.length, checksum: checksumOfBytes(data) });
    const dest = join(workDir, "f");
    await expect(
      downloadFile(storageUrl(baseUrl, "CERN", "f"), dest, { expected: { checksum: "adler32:00000001" } }),
    ).rejects.toSatisfy((err) => err instanceof StorageError && err.code === "CHECKSUM_MISMATCH");
    expect(existsSync(dest)).toBe(false);
    expect(await readdir(workDir)).toEqual([]);
  });

  it("answers 400 for a path that climbs out, even percent-encoded", async () => {
    const { baseUrl } = await startServer();
    for (const path of ["%2e%2e/%2e%2e/etc/passwd", "a/%00b", "a%5Cb", "%E0%A4%A"]) {
      const res = await rawRequest(baseUrl, `/storage/CERN/${path}`, "GET");
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ error: { code: "BAD_PATH" } });
    }
  });

  it("answers 404 for an unknown site or file, 409 for a different file on an existing path", async () => {
    const { baseUrl, workDir } = await startServer();
    expect((await rawRequest(baseUrl, `/storage/NOWHERE/f`, "GET")).json).toMatchObject({
      error: { code: "UNKNOWN_SITE", details: { site: "NOWHERE" } },
    });
    const missing = await rawRequest(baseUrl, `/storage/CERN/none`, "GET");
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: { code: "NOT_FOUND", message: "no file at none" } });
    expect(await clientError(downloadFile(`${baseUrl}/storage/CERN/none`, join(workDir, "x")))).toMatchObject(
      {
        status: 404,
        code: "NOT_FOUND",
      },
    );

    const first = join(workDir, "first");
    const second = join(workDir, "second");
    await writeFile(first, "one");
    await writeFile(second, "two");
    await uploadFile(`${baseUrl}/storage/CERN/f`, first, WRITER);
    expect(await clientError(uploadFile(`${baseUrl}/storage/CERN/f`, second, WRITER))).toMatchObject({
      status: 409,
      code: "EXISTS",
    });
  });

  it("answers 413 for an upload above the limit without reading it", async () => {
    const { baseUrl } = await startServer();
    const res = await rawRequest(baseUrl, "/storage/CERN/big", "PUT", {
      ...WRITER.headers,
      "content-length": String(MAX_PUT_BYTES + 1),
      [CHECKSUM_HEADER]: "adler32:00000001",
    });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ error: { code: "TOO_LARGE", details: { maxPutBytes: MAX_PUT_BYTES } } });
  });

  it("requires the checksum header and a content-length on PUT", async () => {
    const { baseUrl } = await startServer();
    const noChecksum = await rawRequest(
      baseUrl,
      `/storage/CERN/f`,
      "PUT",
      { ...WRITER.headers, "content-length": "3" },
      Buffer.from("abc"),
    );
    expect(noChecksum.status).toBe(400);
    expect(noChecksum.json).toMatchObject({
      error: { code: "BAD_CHECKSUM", details: { header: CHECKSUM_HEADER } },
    });
    const chunked = await rawRequest(
      baseUrl,
      `/storage/CERN/f`,
      "PUT",
      { ...WRITER.headers, [CHECKSUM_HEADER]: checksumOfBytes(Buffer.from("abc")) },
      Buffer.from("abc"),
    );
    expect(chunked.status).toBe(411);
  });

  it("answers 401 without credentials, 403 with the wrong ones, 405 for other methods", async () => {
    const { baseUrl, workDir } = await startServer();
    const source = join(workDir, "f");
    await writeFile(source, "data");
    const url = `${baseUrl}/storage/CERN/f`;
    expect(await clientError(uploadFile(url, source))).toMatchObject({
      status: 401,
      code: "UNAUTHENTICATED",
    });
    const wrong = { headers: { authorization: "Bearer nope" } };
    expect(await clientError(uploadFile(url, source, wrong))).toMatchObject({
      status: 403,
      code: "FORBIDDEN",
    });
    expect((await rawRequest(baseUrl, "/storage/CERN/f", "DELETE")).status).toBe(405);
  });

  it("awaits an asynchronous authorizer and leaves other URLs to other handlers", async () => {
    const asked: string[] = [];
    const { baseUrl } = await startServer(async (_req, site, operation) => {
      asked.push(`${site}:${operation}`);
      return false;
    });
    expect((await rawRequest(baseUrl, `/storage/CERN/f`, "GET")).status).toBe(401);
    expect(asked).toEqual(["CERN:read"]);
    expect((await rawRequest(baseUrl, `/api/v1/jobs`, "GET")).status).toBe(418);
  });
});
