/** Where a job's log file is, and reading its tail from the site's storage. */
import type { Readable } from "node:stream";
import type { JobContext } from "../actors/job/schema.js";
import type { StorageElement } from "../transfer/storage-element.js";

const LOG_SUFFIX = ".log.txt";

/** Where a job's log is: the site it ran at and the name the pilot uploaded it under; null when it has none. */
export function jobLogLocation(job: JobContext): { site: string; lfn: string } | null {
  if (!job.site) return null;
  const log = job.producedFiles.find((f) => f.lfn.endsWith(LOG_SUFFIX));
  return log ? { site: job.site, lfn: log.lfn } : null;
}

/** The last `maxBytes` of a stream, holding no more than that in memory however long the log is. */
export async function tailOf(
  stream: Readable,
  maxBytes: number,
): Promise<{ text: string; truncated: boolean }> {
  let kept = Buffer.alloc(0);
  let truncated = false;
  for await (const chunk of stream) {
    kept = Buffer.concat([kept, chunk as Buffer]);
    if (kept.length > maxBytes) {
      kept = kept.subarray(kept.length - maxBytes);
      truncated = true;
    }
  }
  return { text: kept.toString("utf8"), truncated };
}

export async function openJobLog(
  storage: ReadonlyMap<string, StorageElement>,
  location: { site: string; lfn: string },
): Promise<Readable | null> {
  const element = storage.get(location.site);
  if (!element || !(await element.stat(location.lfn))) return null;
  return element.get(location.lfn);
}
