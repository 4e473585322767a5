import type { PersistedState } from "../../runtime/kinds.js";

/**
 * Version 2 counts a live job among its site's jobs through counters
 * committed with its transitions (`countedAt` says where). A version 1 job
 * was counted by the site actor instead, so it starts uncounted: its next
 * state is counted, and nothing is taken off for the state it was in.
 */
export function migrateJob(fromVersion: number, state: PersistedState): PersistedState {
  if (fromVersion !== 1) return state;
  return { ...state, context: { ...(state.context as object), countedAt: null } };
}
