/** Lifts task snapshots of older machine versions to the current one. */
import type { PersistedState } from "../../runtime/kinds.js";

/**
 * Version 2 no longer hears when each job starts (a task runs from the moment
 * its jobs exist, as in JEDI), so its counts have no `started`. A version 1
 * task still resting in `defined` moves on with its first job's report.
 * Version 3 adds the build step (`build.*` events, the optional `build`):
 * an older task has none and needs nothing.
 */
export function migrateTask(fromVersion: number, state: PersistedState): PersistedState {
  if (fromVersion >= 2) return state;
  const context = state.context as { counts?: Record<string, number> };
  if (!context.counts || !("started" in context.counts)) return state;
  const { started: _, ...counts } = context.counts;
  return { ...state, context: { ...context, counts } };
}
