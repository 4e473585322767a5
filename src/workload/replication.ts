/**
 * Asks for a dataset to be complete at a site: a replication subscription
 * `<dataset>@<site>` over the files the site lacks, each from a site that
 * holds it. Idempotent: asking again answers the existing subscription.
 */
import { refs, subscriptionIdOf } from "../actors/shared/names.js";
import { isRuntimeError } from "../runtime/errors.js";
import { readContext, type WorkloadContext } from "./context.js";
import { WorkloadError } from "./errors.js";

export async function subscribeDataset(
  ctx: WorkloadContext,
  dataset: string,
  site: string,
): Promise<{ subscription: string; files: number; created: boolean }> {
  const [data, target] = await Promise.all([
    readContext(ctx, "dataset", dataset),
    readContext(ctx, "site", site),
  ]);
  if (!data) throw new WorkloadError("DATASET_NOT_FOUND", `dataset ${dataset} does not exist`, { dataset });
  if (!target) throw new WorkloadError("NOT_FOUND", `site ${site} does not exist`, { site });
  const id = subscriptionIdOf(dataset, site);
  const existing = await readContext(ctx, "subscription", id);
  if (existing) return { subscription: id, files: existing.context.progress.files, created: false };
  const present = new Set(data.context.replicas[site] ?? []);
  const files = [];
  for (const [lfn, file] of Object.entries(data.context.files)) {
    if (present.has(lfn)) continue;
    const source = Object.entries(data.context.replicas).find(
      ([s, lfns]) => s !== site && lfns.includes(lfn),
    );
    if (!source) {
      throw new WorkloadError("CONFLICT", `no site holds ${lfn} of ${dataset}: it cannot be replicated`, {
        dataset,
        lfn,
      });
    }
    files.push({ lfn, sizeBytes: file.sizeBytes, checksum: file.checksum, sourceSite: source[0] });
  }
  const atMs = ctx.runtime.clock.nowMs();
  try {
    await ctx.runtime.send(
      refs.subscription(id),
      { type: "create", input: { id, dataset, site, files, purpose: "replication", atMs } },
      { eventId: `subscribe:${id}` },
    );
  } catch (err) {
    if (!isRuntimeError(err, "ACTOR_EXISTS")) throw err;
    return { subscription: id, files: files.length, created: false };
  }
  return { subscription: id, files: files.length, created: true };
}
