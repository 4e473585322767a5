/**
 * The one check of an event from outside the system, at the trust boundary:
 * an object with a type, then the actor kind's own event schema. Events this
 * system produced (effects, timers, the inbox, checked sends) skip it.
 */
import type { ActorKey } from "../store/types.js";
import { RuntimeError } from "./errors.js";
import type { KindDefinition } from "./kinds.js";
import { type AnyEvent, parseEvent } from "./records.js";

/** The event as the actor's kind accepts it; throws BAD_EVENT naming each wrong field. */
export function acceptEvent(definition: KindDefinition, actor: ActorKey, event: unknown): AnyEvent {
  let parsed: AnyEvent;
  try {
    parsed = parseEvent(event);
  } catch (err) {
    throw new RuntimeError("BAD_EVENT", `event for ${actor}: ${(err as Error).message}`);
  }
  if (!definition.eventSchema || parsed.type.startsWith("xstate.")) return parsed;
  const checked = definition.eventSchema.safeParse(parsed);
  if (checked.success) return parsed;
  const detail = checked.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new RuntimeError("BAD_EVENT", `bad ${parsed.type} event for ${actor}: ${detail}`);
}
