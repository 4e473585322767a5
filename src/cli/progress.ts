/** A task's progress as lines for a person waiting on it, read from its actor's context. */
import { z } from "zod";
import type { Runtime } from "../runtime/runtime.js";

/** The part of a task's context a progress line quotes; anything else may change freely. */
const taskProgressSchema = z.object({
  jobCount: z.number(),
  counts: z.object({ finished: z.number(), failed: z.number(), retries: z.number() }),
  timestamps: z.record(z.string(), z.number()),
});

function topState(state: string | null): string | null {
  return state === null ? null : (state.split(".")[0] ?? state);
}

function splitKey(actor: string): [kind: string, id: string] {
  const slash = actor.indexOf("/");
  return [actor.slice(0, slash), actor.slice(slash + 1)];
}

/** "6/6 jobs finished, 0 failed, 1 retry, in 4.2 s". */
export function describeTaskEnd(context: unknown, endedAtMs: number): string {
  const parsed = taskProgressSchema.safeParse(context);
  if (!parsed.success) return "";
  const { jobCount, counts, timestamps } = parsed.data;
  const retries = counts.retries === 1 ? "1 retry" : `${counts.retries} retries`;
  const createdAtMs = timestamps.defined;
  const took = createdAtMs === undefined ? "" : `, in ${((endedAtMs - createdAtMs) / 1000).toFixed(1)} s`;
  return `: ${counts.finished}/${jobCount} jobs finished, ${counts.failed} failed, ${retries}${took}`;
}

/**
 * Prints a line when a task starts running or ends, and when a site changes
 * status, from the transitions this node commits: `panda up`'s terminal shows
 * the grid moving without anyone polling it.
 */
export function reportProgress(runtime: Runtime, say: (line: string) => void): () => void {
  return runtime.onTransitions((transitions) => {
    for (const { actor, entry, state } of transitions) {
      if (entry.refused) continue;
      const [kind, id] = splitKey(actor);
      const from = topState(entry.from);
      const to = topState(entry.to);
      if (from === to) continue;
      if (kind === "task" && state?.status === "done") {
        say(`task ${id} ${to}${describeTaskEnd(state.context, entry.at)}`);
      } else if (kind === "task" && to === "running") {
        say(`task ${id} running`);
      } else if (kind === "site" && from !== null) {
        say(`site ${id}: ${from} -> ${to}`);
      }
    }
  });
}
