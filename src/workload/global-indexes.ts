/** The one writer of the global indexes the actors' transitions keep: it applies their index and incident effects. */
import type { z } from "zod";
import {
  globalEffectNames,
  incidentEffectSchema,
  indexPutSchema,
  indexRemoveSchema,
} from "../actors/shared/global-effects.js";
import { validate } from "../protocol/codec.js";
import type { EmitEffectParams } from "../runtime/effects.js";
import type { Runtime } from "../runtime/runtime.js";
import type { QueueIndex } from "../store/queue-index.js";
import type { IncidentLog } from "./incident-log.js";

/**
 * Applies an `index.put` or `index.remove` effect. Idempotent (the same
 * member and score again change nothing), so the at-least-once outbox and a
 * caller writing what its commit's effect will write both leave one entry.
 */
export async function writeIndexEffect(index: QueueIndex, effect: EmitEffectParams): Promise<void> {
  if (effect.effect === globalEffectNames.indexPut) {
    const { index: name, member, score } = parse(indexPutSchema, effect);
    await index.add(name, member, score);
  } else if (effect.effect === globalEffectNames.indexRemove) {
    const { index: name, member } = parse(indexRemoveSchema, effect);
    await index.remove(name, member);
  }
}

/** Keeps the newest `keep` members of a list that grows without end (a factory's pilot jobs). */
export async function keepNewest(index: QueueIndex, queue: string, keep: number): Promise<void> {
  const excess = (await index.size(queue)) - keep;
  if (excess > 0) await index.popMin(queue, excess);
}

function parse<S extends z.ZodType>(schema: S, effect: EmitEffectParams): z.output<S> {
  return validate(schema, effect.data, `${effect.effect} effect`);
}

/**
 * Registers the handlers of the kinds' global projections (`GlobalProjections`)
 * on a runtime: the entries and incidents committed with a transition reach
 * the `QueueIndex` from the outbox, redelivered after a crash until written.
 * An incident's id comes from its effect's id, so a redelivery rewrites the
 * same record.
 */
export function writeGlobalIndexes(runtime: Runtime, index: QueueIndex, incidents: IncidentLog): void {
  for (const effect of [globalEffectNames.indexPut, globalEffectNames.indexRemove]) {
    runtime.onEffect(effect, (data) => writeIndexEffect(index, { effect, data }));
  }
  runtime.onEffect(globalEffectNames.incident, async (data, { effectId }) => {
    await incidents.record(validate(incidentEffectSchema, data, "incident effect"), effectId);
  });
}
