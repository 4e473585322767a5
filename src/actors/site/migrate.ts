/** Lifts site snapshots of older machine versions to the current one. */
import type { PersistedState } from "../../runtime/kinds.js";
import { DEFAULT_REASSIGN_AFTER_MS } from "../job/schema.js";
import type { OutcomeBucket, RecentOutcome, SiteContext } from "./schema.js";
import { countOutcome } from "./stats.js";

/**
 * Version 1 kept every recent outcome (up to 500) in the snapshot, which
 * made each of a busy site's many small updates re-encode kilobytes, and
 * live jobs per state, updated by an event per job transition; version 2
 * counts outcomes in buckets and leaves live jobs to counters. Lifting a
 * version 1 snapshot counts its outcomes and drops the live counts.
 *
 * Version 3 has a limit on how long a job may wait at the site before it
 * is reassigned (`thresholds.reassignAfterMs`); an older site takes the
 * default. It also remembers the last drain of its pilots; an older site
 * was never drained.
 *
 * Version 4 counts ended jobs per hour for the monitor (`hours`); an older
 * site starts with none.
 */
export function migrateSite(fromVersion: number, state: PersistedState): PersistedState {
  const lifted = fromVersion === 1 ? fromVersion1(state) : state;
  const withHours: PersistedState = { ...lifted, context: { hours: [], ...(lifted.context as object) } };
  if (fromVersion >= 3) return withHours;
  const context = withHours.context as Omit<SiteContext, "thresholds" | "drain"> & {
    thresholds: Partial<SiteContext["thresholds"]>;
  };
  const thresholds = { reassignAfterMs: DEFAULT_REASSIGN_AFTER_MS, ...context.thresholds };
  return { ...withHours, context: { drain: null, ...context, thresholds } };
}

function fromVersion1(state: PersistedState): PersistedState {
  const {
    recentOutcomes = [],
    thresholds,
    ...rest
  } = state.context as SiteContext & {
    recentOutcomes?: RecentOutcome[];
    thresholds: SiteContext["thresholds"] & { maxRecentOutcomes?: number };
  };
  const { maxRecentOutcomes: _dropped, ...kept } = thresholds;
  let outcomes: OutcomeBucket[] = [];
  for (const outcome of recentOutcomes) outcomes = countOutcome(outcomes, outcome, kept.failureWindowMs);
  return { ...state, context: { ...rest, thresholds: kept, outcomes } };
}
