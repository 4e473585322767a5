/**
 * A job sent to a pilot with a sandbox counts as a use of the sandbox, so a
 * task still running keeps its code for as long as its jobs are dispatched,
 * however the pilot fetches the archive: over HTTP the node sees the fetch,
 * from an XRootD server it does not. Marked once per sandbox per interval
 * on each node, not per job: retention is counted in days.
 */
import type { JobContext } from "../actors/job/schema.js";
import type { Logger } from "../runtime/logger.js";
import type { Runtime } from "../runtime/runtime.js";
import type { SandboxStore } from "./sandbox-store.js";

/** How long after marking a sandbox used this node leaves it be: far below any sensible retention. */
const MARK_INTERVAL_MS = 60_000;

/** Starts marking; answers how to stop. */
export function markSandboxesOfSentJobs(
  runtime: Pick<Runtime, "onTransitions">,
  store: SandboxStore,
  nowMs: () => number,
  log: Logger,
): () => void {
  const markedMs = new Map<string, number>();
  return runtime.onTransitions((transitions) => {
    const now = nowMs();
    for (const t of transitions) {
      if (!t.actor.startsWith("job/") || t.entry.refused || t.entry.to !== "sent" || !t.state) continue;
      const job = t.state.context as JobContext;
      const sha256 = (job.builtSandbox ?? job.payload?.sandbox)?.sha256;
      if (sha256 === undefined || now - (markedMs.get(sha256) ?? Number.NEGATIVE_INFINITY) < MARK_INTERVAL_MS)
        continue;
      markedMs.set(sha256, now);
      store.markUsed(sha256, now).catch((err: unknown) => {
        markedMs.delete(sha256);
        log.warn({ sha256, err: (err as Error).message }, "marking a sandbox used failed");
      });
    }
    // Forget marks past the interval, so the map holds only sandboxes of jobs sent lately.
    if (markedMs.size > 1000) {
      for (const [sha256, ms] of markedMs) if (now - ms >= MARK_INTERVAL_MS) markedMs.delete(sha256);
    }
  });
}
