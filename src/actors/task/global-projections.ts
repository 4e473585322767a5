/** The task kind's global projections: a task is listed in the tasks index when it is created. */
import type { EmitEffectParams } from "../../runtime/effects.js";
import type { GlobalProjections } from "../../runtime/kinds.js";
import { queueNames } from "../../store/index-names.js";
import { indexPut } from "../shared/global-effects.js";

/** A task's entry in the tasks index, by submission time: the same write its creation's effect makes. */
export function taskListed(taskId: string, submittedAtMs: number): EmitEffectParams {
  return indexPut(queueNames.tasks(), taskId, submittedAtMs);
}

export const taskGlobalProjections: GlobalProjections = ({ id, before, event, atMs }) => {
  if (before) return [];
  // The submission's time, as the submitter lists it too; the commit's when the input has none.
  const submittedAtMs = (event as { input?: { atMs?: number } }).input?.atMs ?? atMs;
  return [taskListed(id, submittedAtMs)];
};
