/**
 * A job's sandbox on the pilot: fetched from the URL in the job spec with the
 * pilot's credential, checked against its size and sha256, and unpacked into
 * the job directory by the checked unpacker (src/sandbox/archive-unpack.ts).
 * The archive is kept beside the job directory, never in it, and removed
 * after; a sandbox refused is a `SandboxRefused` the job reports as stagein.
 */
import { rm } from "node:fs/promises";
import type { JobSpec } from "../protocol/messages.js";
import { SandboxRefused } from "../sandbox/archive-rules.js";
import { type UnpackResult, unpackArchive } from "../sandbox/archive-unpack.js";
import { downloadFile } from "../transfer/http-client.js";
import type { HeadersFor } from "./stage.js";

export { SandboxRefused };

/** Fetches, verifies and unpacks `sandbox` into `jobDir` (which holds nothing yet). */
export async function installSandbox(
  sandbox: NonNullable<JobSpec["sandbox"]>,
  jobDir: string,
  headersFor: HeadersFor,
): Promise<UnpackResult> {
  const archivePath = `${jobDir}.sandbox.tar.gz`;
  try {
    await downloadFile(sandbox.url, archivePath, {
      headers: headersFor(sandbox.url),
      expected: { sizeBytes: sandbox.sizeBytes, checksum: `sha256:${sandbox.sha256}` },
    });
    return await unpackArchive(archivePath, jobDir, {
      maxUnpackedBytes: sandbox.maxUnpackedBytes,
      maxEntries: sandbox.maxEntries,
    });
  } finally {
    await rm(archivePath, { force: true });
  }
}
