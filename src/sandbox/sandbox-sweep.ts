/**
 * The periodic sweep of sandboxes past their retention, run by every server
 * node (the store's sweep is safe concurrently); a failed round is logged and
 * the next one tries again.
 */
import type { Logger } from "../runtime/logger.js";
import type { SandboxStore } from "./sandbox-store.js";

export function startSandboxSweep(store: SandboxStore, nowMs: () => number, log: Logger): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    store
      .sweep(nowMs())
      .then((swept) => {
        if (swept.length > 0) log.info({ swept }, "sandboxes past their retention deleted");
      })
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, "sandbox sweep failed"))
      .finally(() => {
        running = false;
      });
  }, store.config.sweepIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
