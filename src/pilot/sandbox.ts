/**
 * A job's sandbox on the pilot: fetched from the URL in the job spec (a
 * root:// URL with xrdcp, straight from the XRootD server sandboxes are kept
 * on; else over HTTP with the pilot's credential), checked against its size
 * and sha256 either way, and unpacked into the job directory by the checked
 * unpacker (src/sandbox/archive-unpack.ts).
 * The archive is kept beside the job directory, never in it, and removed
 * after; a sandbox refused is a `SandboxRefused` the job reports as stagein.
 */
import { rm } from "node:fs/promises";
import type { JobSpec } from "../protocol/messages.js";
import { packDirectory } from "../sandbox/archive-pack.js";
import { SandboxRefused } from "../sandbox/archive-rules.js";
import { type UnpackResult, unpackArchive } from "../sandbox/archive-unpack.js";
import type { SandboxRef } from "../sandbox/sandbox-ref.js";
import { uploadFile } from "../transfer/http-client.js";
import { fetchVerified, type HeadersFor } from "./stage.js";

export { SandboxRefused };

/** Fetches, verifies and unpacks `sandbox` into `jobDir` (which holds nothing yet). */
export async function installSandbox(
  sandbox: NonNullable<JobSpec["sandbox"]>,
  jobDir: string,
  headersFor: HeadersFor,
): Promise<UnpackResult> {
  const archivePath = `${jobDir}.sandbox.tar.gz`;
  try {
    await fetchVerified(
      sandbox.url,
      archivePath,
      { sizeBytes: sandbox.sizeBytes, checksum: `sha256:${sandbox.sha256}` },
      headersFor,
    );
    return await unpackArchive(archivePath, jobDir, {
      maxUnpackedBytes: sandbox.maxUnpackedBytes,
      maxEntries: sandbox.maxEntries,
    });
  } finally {
    await rm(archivePath, { force: true });
  }
}

/**
 * A build job's product: the job directory as the command left it (less the
 * payload's log, which goes to storage as every job's does) packed as a
 * sandbox and uploaded under its sha256 for this job.
 */
export async function publishBuild(
  build: NonNullable<JobSpec["build"]>,
  jobDir: string,
  job: { jobId: string; attempt: number },
  headersFor: HeadersFor,
): Promise<SandboxRef> {
  const archivePath = `${jobDir}.built.tar.gz`;
  try {
    const packed = await packDirectory(jobDir, archivePath, {
      exclude: ["./payload.log"],
      maxBytes: build.maxBytes,
    });
    const query = `job=${encodeURIComponent(job.jobId)}&attempt=${job.attempt}`;
    const url = `${build.uploadUrl.replace(/\/+$/, "")}/${packed.sha256}?${query}`;
    await uploadFile(url, archivePath, { checksum: `sha256:${packed.sha256}`, headers: headersFor(url) });
    return { sha256: packed.sha256, sizeBytes: packed.sizeBytes };
  } finally {
    await rm(archivePath, { force: true });
  }
}
