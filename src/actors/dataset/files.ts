/**
 * A dataset's files: conflicts (an lfn given a second size or checksum) and merging a batch of new
 * ones.
 */
import type { LogicalFile } from "../shared/schemas.js";
import type { DatasetContext, DatasetFileEntry } from "./schema.js";

/**
 * Lfns that `files` would give a second, different identity: already in the
 * dataset (or earlier in the same batch) with another size or checksum. A
 * replica's completeness means nothing if an lfn can name two contents.
 */
export function conflictingLfns(existing: Record<string, DatasetFileEntry>, files: LogicalFile[]): string[] {
  const seen = new Map<string, DatasetFileEntry>(Object.entries(existing));
  const conflicts: string[] = [];
  for (const file of files) {
    const known = seen.get(file.lfn);
    if (known && (known.checksum !== file.checksum || known.sizeBytes !== file.sizeBytes)) {
      conflicts.push(file.lfn);
    } else if (!known) {
      seen.set(file.lfn, { sizeBytes: file.sizeBytes, checksum: file.checksum });
    }
  }
  return conflicts;
}

export interface MergedFiles {
  files: Record<string, DatasetFileEntry>;
  fileCount: number;
  totalBytes: number;
  /** Lfns that were not in the dataset before. */
  addedLfns: string[];
}

/** Adds files that are new; identical re-registrations change nothing, which keeps `files.add` idempotent. */
export function mergeFiles(context: DatasetContext, files: LogicalFile[]): MergedFiles {
  const merged = { ...context.files };
  const addedLfns: string[] = [];
  let totalBytes = context.totalBytes;
  for (const file of files) {
    if (merged[file.lfn]) continue;
    merged[file.lfn] = { sizeBytes: file.sizeBytes, checksum: file.checksum };
    addedLfns.push(file.lfn);
    totalBytes += file.sizeBytes;
  }
  return { files: merged, fileCount: context.fileCount + addedLfns.length, totalBytes, addedLfns };
}

export function addReplica(
  replicas: Record<string, string[]>,
  site: string,
  lfns: string[],
): Record<string, string[]> {
  const present = new Set(replicas[site] ?? []);
  for (const lfn of lfns) present.add(lfn);
  return { ...replicas, [site]: [...present] };
}

/** Sites whose replica holds every file of the dataset. */
export function completeReplicaSites(context: Pick<DatasetContext, "replicas" | "fileCount">): string[] {
  return Object.entries(context.replicas)
    .filter(([, lfns]) => lfns.length >= context.fileCount)
    .map(([site]) => site)
    .sort();
}

/** Groups `lfn -> jobs` into `job -> lfns` so each watcher hears once per event. */
export function lfnsByWatcher(watchers: Record<string, string[]>, lfns: string[]): Map<string, string[]> {
  const byJob = new Map<string, string[]>();
  for (const lfn of lfns) {
    for (const jobId of watchers[lfn] ?? []) {
      const list = byJob.get(jobId) ?? [];
      list.push(lfn);
      byJob.set(jobId, list);
    }
  }
  return byJob;
}

export function withoutKeys<T>(record: Record<string, T>, keys: string[]): Record<string, T> {
  const copy = { ...record };
  for (const key of keys) delete copy[key];
  return copy;
}
