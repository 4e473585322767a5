/**
 * The byte formats the runtime keeps in the store, msgpack. The ones written
 * for every transition (snapshots, history entries, effects) are arrays in a
 * fixed order: no key is written with each value (a fifth of a history
 * entry's bytes were its keys). Readers take those arrays and the maps older
 * nodes wrote alike; zod validates every record on the way back in, so a
 * corrupt or foreign record is a typed error, never a crash.
 */
import { z } from "zod";
import { CodecError, decode, decodeWith, encode, validate } from "../protocol/codec.js";
import type { ActorKey } from "../store/types.js";
import type { PersistedState } from "./kinds.js";

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

/** Decodes a record written as an array (`fromArray` names its fields) or as the map older nodes wrote. */
function decodeRecord<S extends z.ZodType>(
  schema: S,
  bytes: Buffer,
  what: string,
  fromArray: (fields: unknown[]) => unknown,
): z.output<S> {
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    throw new CodecError("MALFORMED", `${what} is not valid msgpack: ${(err as Error).message}`);
  }
  return validate(schema, Array.isArray(value) ? fromArray(value) : value, what);
}

/** `[kind, machineVersion, value, context, status, output?]`. */
export function encodeSnapshotRecord(record: SnapshotRecord): Buffer {
  const { value, context, status, output } = record.s;
  return encode(
    status === "done" && output !== undefined
      ? [record.k, record.mv, value, context, status, output]
      : [record.k, record.mv, value, context, status],
  );
}

export function decodeSnapshotRecord(bytes: Buffer): SnapshotRecord {
  return decodeRecord(snapshotRecordSchema, bytes, "snapshot", ([k, mv, value, context, status, output]) => ({
    k,
    mv,
    s: output === undefined ? { value, context, status } : { value, context, status, output },
  })) as SnapshotRecord;
}

/** `[v, at, id, from, to, cause, event]`, then the refusal's code and message when refused. */
export function encodeHistoryEntry(entry: HistoryEntry): Buffer {
  const { v, at, id, from, to, cause, event, refused } = entry;
  return encode(
    refused
      ? [v, at, id, from, to, cause, event, refused.code, refused.message]
      : [v, at, id, from, to, cause, event],
  );
}

/**
 * A send: `["s", id, from, to, event]` (then `"intake"` for that lane); an
 * emitted effect: `["e", id, from, effect, data]`.
 */
export function encodeEffectPayload(effect: EffectPayload): Buffer {
  if (effect.t === "emit") return encode(["e", effect.id, effect.from, effect.effect, effect.data]);
  return encode(
    effect.lane
      ? ["s", effect.id, effect.from, effect.to, effect.e, effect.lane]
      : ["s", effect.id, effect.from, effect.to, effect.e],
  );
}

const constantsSchema = z.record(z.string(), z.unknown());

/** An actor's constant context fields, stored once beside its snapshot (`KindDefinition.constantContext`). */
export function decodeConstants(bytes: Buffer): Record<string, unknown> {
  return decodeWith(constantsSchema, bytes, "constant fields");
}

export function decodeHistoryEntry(bytes: Buffer): HistoryEntry {
  return decodeRecord(
    historyEntrySchema,
    bytes,
    "history entry",
    ([v, at, id, from, to, cause, event, code, message]) =>
      code === undefined
        ? { v, at, id, from, to, cause, event }
        : { v, at, id, from, to, cause, event, refused: { code, message } },
  );
}

export function decodeTimerPayload(bytes: Buffer): TimerPayload {
  return decodeWith(timerPayloadSchema, bytes, "timer payload");
}

export function encodeInboxPayload(payload: InboxPayload): Buffer {
  return encode(payload);
}

export function decodeInboxPayload(bytes: Buffer): InboxPayload {
  return decodeWith(inboxPayloadSchema, bytes, "inbox payload");
}

export function decodeEffectPayload(bytes: Buffer): EffectPayload {
  return decodeRecord(effectPayloadSchema, bytes, "effect", ([t, id, from, a, b, lane]) =>
    t === "e"
      ? { t: "emit", id, from, effect: a, data: b }
      : lane === undefined
        ? { t: "send", id, from, to: a, e: b }
        : { t: "send", id, from, to: a, e: b, lane },
  );
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
