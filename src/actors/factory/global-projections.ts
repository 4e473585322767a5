/** The factory kind's global projection: the list of factories, from each one's creation. */
import type { EmitEffectParams } from "../../runtime/effects.js";
import type { GlobalProjections } from "../../runtime/kinds.js";
import { factoryQueues } from "../../store/index-names.js";
import { indexPut } from "../shared/global-effects.js";

/** A factory's entry in the list: the same write its creation's effect makes. */
export function factoryListed(name: string, atMs: number): EmitEffectParams {
  return indexPut(factoryQueues.factories, name, atMs);
}

export const factoryGlobalProjections: GlobalProjections = ({ id, before, atMs }) =>
  before ? [] : [factoryListed(id, atMs)];
