/**
 * Moving a job's files between storage and its job directory: stage-in of
 * inputs, stage-out of outputs and log, each checked against its checksum.
 * root:// URLs (a site's XRootD storage element) go with xrdcp, straight to
 * the storage; http(s) URLs through the server's storage routes.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { FileReport, JobSpec } from "../protocol/messages.js";
import { checksumOfStream } from "../transfer/checksum.js";
import { downloadFile, uploadFile } from "../transfer/http-client.js";
import type { ExpectedFile } from "../transfer/storage-element.js";
import { storagePathSegments } from "../transfer/storage-path.js";
import { downloadXrootd, uploadXrootd } from "../transfer/xrootd-client.js";
import { isXrootdUrl } from "../transfer/xrootd-endpoint.js";

/** The request headers for a storage URL (the credential goes only where it belongs). */
export type HeadersFor = (url: string) => Record<string, string>;

/**
 * Where a file named by the server lives in the job directory. The name is
 * checked like a storage path, so `../x` or `/etc/x` cannot land outside it.
 */
export function pathInJobDir(jobDir: string, lfn: string): string {
  return join(jobDir, ...storagePathSegments(lfn));
}

/** Fetches every input into the job directory, each verified against its size and checksum. */
export async function stageIn(
  inputs: JobSpec["inputs"],
  jobDir: string,
  headersFor: HeadersFor,
): Promise<void> {
  for (const input of inputs) {
    const expected = { sizeBytes: input.sizeBytes, checksum: input.checksum };
    await fetchVerified(input.url, pathInJobDir(jobDir, input.lfn), expected, headersFor);
  }
}

/**
 * Downloads `url` to `dest`, which appears only once its size and checksum
 * are as expected: a root:// URL with xrdcp, straight from the XRootD
 * server; an http(s) one with the credential `headersFor` gives it.
 */
export async function fetchVerified(
  url: string,
  dest: string,
  expected: ExpectedFile,
  headersFor: HeadersFor,
): Promise<void> {
  if (isXrootdUrl(url)) await downloadXrootd(url, dest, expected);
  else await downloadFile(url, dest, { headers: headersFor(url), expected });
}

/** `${uploadUrl}/${lfn}`, each path segment of the name encoded. */
export function uploadUrlFor(uploadUrl: string, lfn: string): string {
  const encoded = storagePathSegments(lfn).map(encodeURIComponent).join("/");
  return `${uploadUrl.replace(/\/+$/, "")}/${encoded}`;
}

/** Uploads one file under `lfn` with its Adler-32 checksum; answers what the storage holds. */
export async function uploadAs(
  path: string,
  lfn: string,
  uploadUrl: string,
  headersFor: HeadersFor,
): Promise<FileReport> {
  const { checksum } = await checksumOfStream(createReadStream(path));
  if (isXrootdUrl(uploadUrl)) {
    const stored = await uploadXrootd(uploadUrl, lfn, path, checksum);
    return { lfn, sizeBytes: stored.sizeBytes, checksum: stored.checksum };
  }
  const url = uploadUrlFor(uploadUrl, lfn);
  const stored = await uploadFile(url, path, { checksum, headers: headersFor(url) });
  return { lfn, sizeBytes: stored.sizeBytes, checksum: stored.checksum };
}

export interface StagedOutputs {
  uploaded: FileReport[];
  /** Expected outputs the payload did not write. */
  missing: string[];
}

/** Uploads each expected output the payload wrote; names the ones it did not. */
export async function stageOut(
  outputs: readonly string[],
  jobDir: string,
  uploadUrl: string,
  headersFor: HeadersFor,
): Promise<StagedOutputs> {
  const staged: StagedOutputs = { uploaded: [], missing: [] };
  for (const lfn of outputs) {
    const path = pathInJobDir(jobDir, lfn);
    if (!(await isFile(path))) {
      staged.missing.push(lfn);
      continue;
    }
    staged.uploaded.push(await uploadAs(path, lfn, uploadUrl, headersFor));
  }
  return staged;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
