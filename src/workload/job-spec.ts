/**
 * What a pilot is told to run for a job: the job's context as the `job.push`
 * frame's `JobSpec`, its placeholders expanded per attempt and its files as
 * URLs of the node's storage. Pure, so it is tested without a socket; the
 * dispatcher calls it once per push.
 */
import type { JobContext } from "../actors/job/schema.js";
import type { JobSpec } from "../protocol/messages.js";
import { sandboxPath, sandboxUrl } from "../sandbox/sandbox-ref.js";
import { storageUrl } from "../transfer/http-client.js";
import type { StorageElement } from "../transfer/storage-element.js";
import type { SpecStorage } from "./grid-storage.js";

/** The members of a job's context a spec is built from. */
export type JobSpecSource = Pick<
  JobContext,
  "jobId" | "attempt" | "taskId" | "index" | "type" | "site" | "payload" | "resources" | "inputs"
> &
  Partial<Pick<JobContext, "builtSandbox">>;

/** `{jobId}`, `{taskId}`, `{attempt}` and `{index}` replaced, so every attempt's files have their own logical names. */
export function expand(text: string, job: JobSpecSource): string {
  return text
    .replaceAll("{jobId}", job.jobId)
    .replaceAll("{taskId}", job.taskId)
    .replaceAll("{attempt}", String(job.attempt))
    .replaceAll("{index}", String(job.index));
}

/**
 * The spec of a job bound to a pilot. Inputs are fetched from, and outputs
 * uploaded to, the job's site's storage element: directly when pilots can
 * reach it (an XRootD element: root:// URLs), else through the node, under
 * `publicUrl` (`/storage/<site>/...`). Its sandbox likewise: at its root://
 * URL when sandboxes are kept on XRootD, else at the node's `/sandboxes/`.
 * A job without a payload (work that is only simulated) runs `true`.
 */
export function jobSpec(job: JobSpecSource, publicUrl: string, storage?: SpecStorage): JobSpec {
  const site = job.site ?? "";
  const element = storage?.get(site);
  const direct = element?.directUrl && element.directBaseUrl ? element : undefined;
  const payload = job.payload ?? { command: ["true"], env: {}, outputs: [] };
  return {
    jobId: job.jobId,
    attempt: job.attempt,
    taskId: job.taskId,
    type: job.type,
    command: payload.command.map((arg) => expand(arg, job)),
    env: payload.env,
    walltimeSec: job.resources.walltimeSec,
    inputs: job.inputs.map((f) => ({
      lfn: f.lfn,
      sizeBytes: f.sizeBytes,
      checksum: f.checksum,
      url: direct ? direct.directUrl!(f.lfn) : storageUrl(publicUrl, site, f.lfn),
    })),
    uploadUrl: direct
      ? direct.directBaseUrl!()
      : `${publicUrl.replace(/\/+$/, "")}/storage/${encodeURIComponent(site)}`,
    outputs: (payload.outputs ?? []).map((name) => expand(name, job)),
    ...sandboxOf(job, publicUrl, storage?.sandboxElement ?? null),
  };
}

/**
 * The sandbox a job runs in (its site's build's, or the task's) and, for a
 * build job, where its product goes. A build's product is uploaded through
 * the node, which checks that the job may and records it in the catalog.
 */
function sandboxOf(
  job: JobSpecSource,
  publicUrl: string,
  element: StorageElement | null,
): Pick<JobSpec, "sandbox" | "build"> {
  const sandbox = job.builtSandbox ?? job.payload?.sandbox;
  const produces = job.payload?.producesSandbox;
  const urlOf = (sha256: string) =>
    element?.directUrl ? element.directUrl(sandboxPath(sha256)) : sandboxUrl(publicUrl, sha256);
  return {
    ...(sandbox ? { sandbox: { ...sandbox, url: urlOf(sandbox.sha256) } } : {}),
    ...(produces
      ? { build: { uploadUrl: `${publicUrl.replace(/\/+$/, "")}/sandboxes`, maxBytes: produces.maxBytes } }
      : {}),
  };
}
