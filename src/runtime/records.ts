import { z } from "zod";
import { CodecError, decodeWith, encode } from "../protocol/codec.js";
import type { ActorKey } from "../store/types.js";
import type { PersistedState } from "./kinds.js";

/**
 * The byte formats the runtime keeps in the store. All are msgpack maps with
 * short keys; zod validates every one on the way back in, so a corrupt or
 * foreign record is a typed error, never a crash.
 */

const eventSchema = z.looseObject({ type: z.string().min(1) });
export type AnyEvent = z.infer<typeof eventSchema>;

const persistedStateSchema = z.object({
  value: z.unknown(),
  context: z.unknown(),
  status: z.enum(["active", "done", "error", "stopped"]),
  output: z.unknown().optional(),
});

const snapshotRecordSchema = z.object({ k: z.string(), mv: z.number().int(), s: persistedStateSchema });
export interface SnapshotRecord {
  k: string;
  mv: number;
  s: PersistedState;
}

const historyEntrySchema = z.object({
  v: z.number().int(),
  at: z.number(),
  id: z.string(),
  event: eventSchema,
  from: z.string().nullable(),
  to: z.string(),
  cause: z.string(),
  refused: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

const timerPayloadSchema = z.object({ a: z.string(), e: eventSchema });
export interface TimerPayload {
  a: ActorKey;
  e: AnyEvent;
}

const inboxPayloadSchema = z.object({ a: z.string(), e: eventSchema, c: z.string() });
export interface InboxPayload {
  a: ActorKey;
  e: AnyEvent;
  c: string;
}

const effectPayloadSchema = z.discriminatedUnion("t", [
  z.object({
    t: z.literal("send"),
    id: z.string(),
    from: z.string(),
    to: z.string(),
    e: eventSchema,
    lane: z.literal("intake").optional(),
  }),
  z.object({ t: z.literal("emit"), id: z.string(), from: z.string(), effect: z.string(), data: z.unknown() }),
]);
export type EffectPayload = z.infer<typeof effectPayloadSchema>;

export const encodeRecord = encode;

export function decodeSnapshotRecord(bytes: Buffer): SnapshotRecord {
  return decodeWith(snapshotRecordSchema, bytes, "snapshot") as SnapshotRecord;
}

const constantsSchema = z.record(z.string(), z.unknown());

/** An actor's constant context fields, stored once beside its snapshot (`KindDefinition.constantContext`). */
export function decodeConstants(bytes: Buffer): Record<string, unknown> {
  return decodeWith(constantsSchema, bytes, "constant fields");
}

export function decodeHistoryEntry(bytes: Buffer): HistoryEntry {
  return decodeWith(historyEntrySchema, bytes, "history entry");
}

export function decodeTimerPayload(bytes: Buffer): TimerPayload {
  return decodeWith(timerPayloadSchema, bytes, "timer payload");
}

export function decodeInboxPayload(bytes: Buffer): InboxPayload {
  return decodeWith(inboxPayloadSchema, bytes, "inbox payload");
}

export function decodeEffectPayload(bytes: Buffer): EffectPayload {
  return decodeWith(effectPayloadSchema, bytes, "effect");
}

/** Validates an event from outside: an object with a non-empty string `type`. */
export function parseEvent(value: unknown): AnyEvent {
  const parsed = eventSchema.safeParse(value);
  if (!parsed.success)
    throw new CodecError("SCHEMA", "an event must be an object with a non-empty string 'type'");
  return parsed.data;
}

/** `{running: {primary: 'busy'}}` -> `running.primary.busy`; parallel regions joined by `,`. */
export function stateValueToString(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    return Object.entries(value as Record<string, unknown>)
      .map(([key, child]) => {
        const inner = stateValueToString(child);
        return inner ? `${key}.${inner}` : key;
      })
      .join(",");
  }
  return "";
}
