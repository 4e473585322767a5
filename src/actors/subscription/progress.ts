/** A subscription's per-file progress and totals: pending, done, failed, attempts. */
import type { FileToMove } from "../shared/schemas.js";
import type { FileProgress, SubscriptionContext } from "./schema.js";

export function initialProgress(files: FileToMove[]): Pick<SubscriptionContext, "files" | "progress"> {
  const progress: Record<string, FileProgress> = {};
  let bytes = 0;
  for (const file of files) {
    if (progress[file.lfn]) continue;
    progress[file.lfn] = {
      sizeBytes: file.sizeBytes,
      checksum: file.checksum,
      sourceSite: file.sourceSite,
      status: "pending",
      attempts: 1,
      lastError: null,
    };
    bytes += file.sizeBytes;
  }
  const count = Object.keys(progress).length;
  return { files: progress, progress: { files: count, filesDone: 0, bytes, bytesDone: 0 } };
}

export function isPending(context: SubscriptionContext, lfn: string): boolean {
  return context.files[lfn]?.status === "pending";
}

export function markDone(
  context: SubscriptionContext,
  lfn: string,
): Pick<SubscriptionContext, "files" | "progress"> {
  const file = context.files[lfn]!;
  return {
    files: { ...context.files, [lfn]: { ...file, status: "done" } },
    progress: {
      ...context.progress,
      filesDone: context.progress.filesDone + 1,
      bytesDone: context.progress.bytesDone + file.sizeBytes,
    },
  };
}

/** A failed file goes back to pending for another transfer, or stays failed when out of attempts. */
export function markFailed(
  context: SubscriptionContext,
  lfn: string,
  reason: string,
): Pick<SubscriptionContext, "files"> {
  const file = context.files[lfn]!;
  const exhausted = file.attempts >= context.maxFileAttempts;
  const next: FileProgress = exhausted
    ? { ...file, status: "failed", lastError: reason }
    : { ...file, attempts: file.attempts + 1, lastError: reason };
  return { files: { ...context.files, [lfn]: next } };
}

/** A `transfer.start` payload in the transfer agent's request shape (`TransferRequest`), plus the dataset. */
export function transferFiles(context: SubscriptionContext, lfns: string[]) {
  return {
    subscriptionId: context.id,
    destSite: context.site,
    dataset: context.dataset,
    files: lfns.map((lfn) => {
      const file = context.files[lfn]!;
      return { lfn, sizeBytes: file.sizeBytes, checksum: file.checksum, sourceSite: file.sourceSite };
    }),
  };
}
