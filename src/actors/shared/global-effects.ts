/** The effects kinds' global projections emit (index entries, incidents): names, data schemas and builders. */
import { z } from "zod";
import type { EmitEffectParams } from "../../runtime/effects.js";
import { type NewIncident, newIncidentSchema } from "./incident.js";

export const globalEffectNames = {
  /** `member` is in global index `index` with `score`. */
  indexPut: "index.put",
  /** `member` has left global index `index`. */
  indexRemove: "index.remove",
  /** An incident for the incident log; its id is derived from the effect's. */
  incident: "incident.record",
} as const;

export const indexPutSchema = z.object({
  index: z.string().min(1),
  member: z.string().min(1),
  score: z.number(),
});
export const indexRemoveSchema = z.object({ index: z.string().min(1), member: z.string().min(1) });
export const incidentEffectSchema = newIncidentSchema;

export function indexPut(index: string, member: string, score: number): EmitEffectParams {
  return { effect: globalEffectNames.indexPut, data: { index, member, score } };
}

export function indexRemove(index: string, member: string): EmitEffectParams {
  return { effect: globalEffectNames.indexRemove, data: { index, member } };
}

export function incidentRaised(incident: NewIncident): EmitEffectParams {
  return { effect: globalEffectNames.incident, data: incident };
}

/** A state value's top-level state: `brokeroff` of `{brokeroff: "x"}`. */
export function topStateOf(value: unknown): string {
  if (typeof value === "string") return value;
  return Object.keys(value as object)[0] ?? "";
}
