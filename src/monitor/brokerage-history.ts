/**
 * Where a job's brokerage decision is kept: in its last applied `brokered`
 * history entry (the job's snapshot holds only how often brokerage answered).
 * No imports, so the server (`panda why`, the jobs API) and the browser's job
 * page share it.
 */
interface HistoryEntryShape {
  event: { type?: unknown; decision?: unknown };
  refused?: unknown;
}

/** The `decision` of the newest applied `brokered` entry (history oldest first), or undefined. */
export function lastBrokeredDecision(history: readonly HistoryEntryShape[]): unknown {
  for (let i = history.length - 1; i >= 0; i--) {
    const entry = history[i]!;
    if (!entry.refused && entry.event.type === "brokered") return entry.event.decision;
  }
  return undefined;
}
