/** The pilot-job kind's global projections: its factory's list of pilot jobs, and of those still live. */
import type { EmitEffectParams } from "../../runtime/effects.js";
import type { GlobalProjections } from "../../runtime/kinds.js";
import { factoryQueues } from "../../store/index-names.js";
import { indexPut, indexRemove, topStateOf } from "../shared/global-effects.js";
import { FINAL_PILOT_JOB_STATES, type PilotJobContext } from "./schema.js";

/** A record's entries in its factory's lists when it is made: the same writes its creation's effects make. */
export function pilotJobListed(factory: string, id: string, atMs: number): EmitEffectParams[] {
  return [
    indexPut(factoryQueues.pilotJobs(factory), id, atMs),
    indexPut(factoryQueues.livePilotJobs(factory), id, atMs),
  ];
}

export const pilotJobGlobalProjections: GlobalProjections = ({ id, before, after, atMs }) => {
  const { factory } = after.context as PilotJobContext;
  if (!before) return pilotJobListed(factory, id, atMs);
  const ended = FINAL_PILOT_JOB_STATES.has(topStateOf(after.value));
  if (ended && !FINAL_PILOT_JOB_STATES.has(topStateOf(before.value)))
    return [indexRemove(factoryQueues.livePilotJobs(factory), id)];
  return [];
};
