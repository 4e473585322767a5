/** Lifts job snapshots of older machine versions to the current one. */
import type { PersistedState } from "../../runtime/kinds.js";

type Context = Record<string, unknown>;

/**
 * Version 2 counts a live job among its site's jobs through counters
 * committed with its transitions (`countedAt` says where). A version 1 job
 * was counted by the site actor instead, so it starts uncounted: its next
 * state is counted, and nothing is taken off for the state it was in.
 *
 * Version 3 keeps the brokerage decision in the `brokered` history entry
 * only; the snapshot keeps how many times brokerage answered.
 *
 * Version 4 derives the job's counts, queue entries and pilot binding from
 * its state (the kind's projections), so `countedAt` is gone.
 *
 * Version 5 reassigns: a job counts its reassignments (which, unlike
 * failures, use up no attempt) and knows whether it is a test job. An older
 * job was never reassigned and is not a test job.
 *
 * Version 6 no longer arms a timer for its site's limit on waiting there
 * (the grid sweeps its queues for stale jobs instead), so the limit a
 * version 5 job kept is gone. A timer such a job armed may still fire: no
 * state takes its event any more, so it is refused and changes nothing.
 *
 * Version 7 draws on a fair share and keeps a current priority (the user's
 * rule, set when brokered). An older job draws on `default` and keeps the
 * priority it was given.
 *
 * Version 8 no longer keeps its top-level state and the one before in its
 * context (`state`, `previousState`): the state is the machine's value
 * (`jobStateOf`), and what an end reports from where is computed from the
 * states before and after the transition (`transition-effects.ts`).
 *
 * Version 9 adds the build step (`defined.awaitingBuild`, `build.ready`,
 * `build.failed`, the optional `builtSandbox` and `producedSandbox`): an
 * older job has none of it and needs nothing.
 */
export function migrateJob(fromVersion: number, state: PersistedState): PersistedState {
  let context = state.context as Context;
  if (fromVersion < 2) context = { ...context, countedAt: null };
  if (fromVersion < 3) {
    const { tries } = (context.brokerage ?? {}) as { tries?: number };
    context = { ...context, brokerage: { tries: tries ?? 0 } };
  }
  if (fromVersion < 4 && "countedAt" in context) {
    const { countedAt: _, ...rest } = context;
    context = rest;
  }
  if (fromVersion < 5) {
    context = { test: false, reassignments: 0, reassignment: null, ...context };
  }
  if (fromVersion < 6 && "reassignAfterMs" in context) {
    const { reassignAfterMs: _, ...rest } = context;
    context = rest;
  }
  if (fromVersion < 7) context = { share: null, currentPriority: null, ...context };
  if (fromVersion < 8 && ("state" in context || "previousState" in context)) {
    const { state: _s, previousState: _p, ...rest } = context;
    context = rest;
  }
  return context === state.context ? state : { ...state, context };
}
