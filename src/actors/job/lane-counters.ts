/**
 * The analysis lane's share of a site's live jobs: an analysis job with a
 * site also counts, while live, in `jobs-analysis:<site>:<state>`, so the
 * monitor splits the `jobs:` counters into production and analysis without
 * reading a job. Added to the job's own projections, so it is written in the
 * same commit as the transition (one more counter delta on an analysis job's
 * commit, summed per batch like the others); production is the difference.
 */
import type { KindProjections, Projection } from "../../runtime/kinds.js";
import { isJobOutcome } from "../shared/schemas.js";
import type { JobContext } from "./schema.js";
import { jobStateOf } from "./state.js";

const PREFIX = "jobs-analysis:";
/** Added to the base rules' version, so a change of either rebuilds the counters when a shard is taken. */
const VERSION_STEP = 100;

export function analysisJobsCounter(site: string, state: string): string {
  return `${PREFIX}${site}:${state}`;
}

/** Site and state of an `analysisJobsCounter` name; null for any other counter. */
export function parseAnalysisJobsCounter(name: string): { site: string; state: string } | null {
  if (!name.startsWith(PREFIX)) return null;
  const last = name.lastIndexOf(":");
  if (last <= PREFIX.length) return null;
  return { site: name.slice(PREFIX.length, last), state: name.slice(last + 1) };
}

export const ANALYSIS_JOBS_PREFIX = PREFIX;

/** The base projections with the analysis lane's live counts added. */
export function withAnalysisCounters(base: KindProjections): KindProjections {
  return {
    version: base.version + VERSION_STEP,
    counterPrefixes: [...base.counterPrefixes, PREFIX],
    of(state, id): Projection {
      const projection = base.of(state, id);
      const context = state.context as JobContext;
      if (context.type !== "analysis" || !context.site) return projection;
      const jobState = jobStateOf(state);
      if (isJobOutcome(jobState)) return projection;
      return {
        index: projection.index,
        counters: [...projection.counters, { name: analysisJobsCounter(context.site, jobState), value: 1 }],
      };
    },
  };
}
