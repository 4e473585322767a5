/**
 * Files that enter a dataset from outside a job (uploads through the API, a
 * simulation's seeded inputs), stored at a site's storage element before the
 * dataset lists them; and the closing of a dataset to new files.
 */
import { refs } from "../actors/shared/names.js";
import { isRuntimeError } from "../runtime/errors.js";
import { checksumOfBytes } from "../transfer/checksum.js";
import { readContext, type WorkloadContext } from "./context.js";
import { WorkloadError } from "./errors.js";

export interface FileToPut {
  lfn: string;
  bytes: Uint8Array;
  /** When given, the upload is refused unless the bytes match it. */
  checksum?: string;
}

/**
 * Stores files at a site's storage element and registers them (and their
 * replica there) in a dataset, creating the dataset if needed. A frozen
 * dataset refuses new files before anything is stored.
 */
export async function putFiles(
  ctx: WorkloadContext,
  datasetName: string,
  site: string,
  files: FileToPut[],
): Promise<{ lfn: string; sizeBytes: number; checksum: string }[]> {
  const element = ctx.storage.get(site);
  if (!element) throw new WorkloadError("NOT_FOUND", `site ${site} has no storage element`, { site });
  if (files.length === 0) throw new WorkloadError("BAD_REQUEST", "no files to put");
  const atMs = ctx.runtime.clock.nowMs();
  let dataset = await readContext(ctx, "dataset", datasetName);
  if (!dataset) {
    // Applied before the answer wherever the dataset's shard is: the caller's next request may read it through another node.
    await ctx.runtime
      .sendApplied(refs.dataset(datasetName), { type: "create", input: { name: datasetName, atMs } })
      .catch((err: unknown) => {
        if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
      });
    dataset = await readContext(ctx, "dataset", datasetName);
  }
  if (dataset && dataset.state !== "open") {
    throw new WorkloadError(
      "DATASET_FROZEN",
      `dataset ${datasetName} is ${dataset.state}: no files can be added`,
      {
        dataset: datasetName,
        state: dataset.state,
      },
    );
  }
  const registered: { lfn: string; sizeBytes: number; checksum: string }[] = [];
  for (const file of files) {
    const checksum = file.checksum ?? checksumOfBytes(file.bytes);
    const stored = await element.put(file.lfn, file.bytes, { sizeBytes: file.bytes.byteLength, checksum });
    registered.push({ lfn: file.lfn, sizeBytes: stored.sizeBytes, checksum: stored.checksum });
  }
  try {
    await ctx.runtime.sendApplied(refs.dataset(datasetName), {
      type: "files.add",
      files: registered,
      site,
      atMs,
    });
  } catch (err) {
    if (isRuntimeError(err, "EVENT_NOT_ACCEPTED")) {
      throw new WorkloadError("CONFLICT", `dataset ${datasetName} refused the files: ${err.message}`, {
        dataset: datasetName,
      });
    }
    throw err;
  }
  return registered;
}

/** Closes a dataset to new files (its replicas can still grow). */
export async function closeDataset(ctx: WorkloadContext, name: string, freeze = false): Promise<void> {
  const atMs = ctx.runtime.clock.nowMs();
  await ctx.runtime.sendApplied(refs.dataset(name), { type: freeze ? "freeze" : "close", atMs });
}
