/**
 * The client side of storage on XRootD, for pilots and the CLI: a download
 * with xrdcp that appears only once its size and checksum are verified, and
 * an upload into a storage element's directory given by its root:// URL.
 */
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { createFileDigester, type FileDigest } from "./checksum.js";
import { verifyReceived } from "./http-client.js";
import type { ExpectedFile, PutResult } from "./storage-element.js";
import { runXrd } from "./xrootd-commands.js";
import { splitXrootdUrl, xrootdUrl } from "./xrootd-endpoint.js";
import { XrootdStorageElement } from "./xrootd-storage-element.js";

/** Downloads a root:// URL to `destPath`, verified: the bytes land beside it first and are renamed into place. */
export async function downloadXrootd(
  url: string,
  destPath: string,
  expected: Partial<ExpectedFile> = {},
): Promise<FileDigest> {
  const location = splitXrootdUrl(url);
  if (location === null) throw new Error(`not a root:// URL of a file: ${url}`);
  await mkdir(dirname(destPath), { recursive: true });
  const tempPath = `${destPath}.part-${randomUUID()}`;
  try {
    await runXrd("xrdcp", ["-s", xrootdUrl(location.hostPort, location.path), tempPath]);
    const digester = createFileDigester();
    for await (const chunk of createReadStream(tempPath)) digester.update(chunk as Buffer);
    const actual = digester.digest();
    verifyReceived(url, actual, expected);
    await rename(tempPath, destPath);
    return actual;
  } catch (err) {
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
}

/** The storage element whose directory a root:// URL names (a job's `uploadUrl`). */
export function xrootdElementAt(directoryUrl: string): XrootdStorageElement {
  const location = splitXrootdUrl(directoryUrl);
  if (location === null) throw new Error(`not a root:// URL of a directory: ${directoryUrl}`);
  return new XrootdStorageElement({
    endpoint: `root://${location.hostPort}/`,
    basePath: location.path === "/" ? "" : location.path,
  });
}

/** Uploads a local file under `path` in the element at `directoryUrl`, verified on the server before it appears. */
export async function uploadXrootd(
  directoryUrl: string,
  path: string,
  sourcePath: string,
  checksum: string,
): Promise<PutResult> {
  const { size } = await stat(sourcePath);
  return xrootdElementAt(directoryUrl).put(path, createReadStream(sourcePath), { sizeBytes: size, checksum });
}
