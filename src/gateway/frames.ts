import { z } from "zod";
import { decode, encode, validate } from "../protocol/codec.js";
import {
  jobKillSchema,
  jobPushSchema,
  type PilotMessage,
  type ProtocolErrorCode,
  type ProtocolVersion,
  pilotDrainSchema,
  pilotMessageSchema,
  type ServerMessage,
  subprotocolOf,
} from "../protocol/messages.js";

/** The server frames the dispatch layer may push; the gateway answers the others itself. */
const pushableMessageSchema = z.discriminatedUnion("type", [jobPushSchema, jobKillSchema, pilotDrainSchema]);

type WithoutEnvelope<M> = M extends unknown ? Omit<M, "v" | "id"> : never;

/** A `job.push`, `job.kill` or `pilot.drain` without `v` and `id`, which the gateway adds. */
export type ServerMessageInput = WithoutEnvelope<z.input<typeof pushableMessageSchema>>;

/** Error frames quote decoder and schema messages, which can echo a whole frame back. */
const MAX_ERROR_TEXT_CHARS = 512;

export type DecodedFrame =
  | { ok: true; message: PilotMessage }
  | { ok: false; code: Extract<ProtocolErrorCode, "MALFORMED" | "SCHEMA">; detail: string; ref?: string };

/** The `id` of a decoded value, when it has a usable one, so an error frame can name its cause. */
function frameIdOf(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const id = (value as { id?: unknown }).id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : undefined;
}

export function limitText(text: string, maxChars = MAX_ERROR_TEXT_CHARS): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

function schemaError(detail: string, ref: string | undefined): DecodedFrame {
  return {
    ok: false,
    code: "SCHEMA",
    detail: limitText(`invalid pilot message: ${detail}`),
    ...(ref ? { ref } : {}),
  };
}

/** Reads one WebSocket message as a pilot frame of the socket's protocol version: binary msgpack, then the wire schema. */
export function decodePilotFrame(bytes: Buffer, isBinary: boolean, version: ProtocolVersion): DecodedFrame {
  if (!isBinary) {
    return { ok: false, code: "MALFORMED", detail: "text frames are not accepted: send binary msgpack" };
  }
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    return {
      ok: false,
      code: "MALFORMED",
      detail: limitText(`not valid msgpack: ${(err as Error).message}`),
    };
  }
  const ref = frameIdOf(value);
  let message: PilotMessage;
  try {
    message = validate(pilotMessageSchema, value, "pilot message");
  } catch (err) {
    return { ok: false, code: "SCHEMA", detail: limitText((err as Error).message), ...(ref ? { ref } : {}) };
  }
  if (message.v !== version) {
    return schemaError(`v: expected ${version}, the version of this socket (${subprotocolOf(version)})`, ref);
  }
  return { ok: true, message };
}

/** The frame id of bytes that may not be a valid frame at all (for refusals that skip validation). */
export function frameIdOfBytes(bytes: Buffer, isBinary: boolean): string | undefined {
  if (!isBinary) return undefined;
  try {
    return frameIdOf(decode(bytes));
  } catch {
    return undefined;
  }
}

/**
 * Drops `undefined` members: msgpackr would write them as an extension type
 * that decoders in other languages do not know, and zod keeps optional keys
 * that were given as `undefined`.
 */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (typeof value !== "object" || value === null || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    if (member !== undefined) out[key] = withoutUndefined(member);
  }
  return out;
}

export function encodeServerFrame(message: ServerMessage): Buffer {
  return encode(withoutUndefined(message));
}

/** Checks a pushed message against the wire contract and completes its envelope; throws on a bad one. */
export function pushFrame(input: ServerMessageInput, version: ProtocolVersion, id: string): ServerMessage {
  return validate(pushableMessageSchema, { ...input, v: version, id }, "pushed server message");
}

export function errorFrame(
  version: ProtocolVersion,
  id: string,
  code: ProtocolErrorCode,
  message: string,
  ref?: string,
): ServerMessage {
  return {
    type: "error",
    v: version,
    id,
    code,
    message: limitText(message),
    ...(ref === undefined ? {} : { ref }),
  };
}
