/**
 * Frames on the gateway's side: decoding and checking what a pilot sends, and
 * encoding what the server sends (pushes, acks, errors) with its envelope.
 */
import { z } from "zod";
import { decode, encodeFrame, validate } from "../protocol/codec.js";
import {
  jobKillSchema,
  jobPushSchema,
  type PilotMessage,
  type ProtocolErrorCode,
  type ProtocolVersion,
  pilotDrainSchema,
  pilotMessageSchemaByType,
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

const KNOWN_TYPES = [...pilotMessageSchemaByType.keys()].join(", ");

function schemaError(detail: string, ref: string | undefined): DecodedFrame {
  return {
    ok: false,
    code: "SCHEMA",
    detail: limitText(`invalid pilot message: ${detail}`),
    ...(ref ? { ref } : {}),
  };
}

/**
 * Reads one WebSocket message as a pilot frame of the socket's protocol
 * version: binary msgpack, then the schema its `type` names (looked up, which
 * costs less than the union trying its members), then the version.
 */
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
  const type = typeof value === "object" && value !== null ? (value as { type?: unknown }).type : undefined;
  const schema = typeof type === "string" ? pilotMessageSchemaByType.get(type) : undefined;
  if (schema === undefined) return schemaError(`type: expected one of ${KNOWN_TYPES}`, ref);
  let message: PilotMessage;
  try {
    message = validate(schema, value, "pilot message");
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

export function encodeServerFrame(message: ServerMessage): Buffer {
  return encodeFrame(message);
}

/**
 * Completes a pushed message's envelope. A `job.push` is the hot path and is
 * built by the dispatcher from job state checked when it was submitted, so
 * its TypeScript type is its check (the pilot validates what it receives);
 * the rare `job.kill` and `pilot.drain` are checked against the wire
 * contract here, and a bad one throws.
 */
export function pushFrame(input: ServerMessageInput, version: ProtocolVersion, id: string): ServerMessage {
  if (input.type === "job.push") {
    // Its optional `env` is optional on the wire too (the pilot defaults it), hence the cast. Built
    // member by member: a literal of one shape costs less than a spread of the caller's object.
    return { type: "job.push", v: version, id, thread: input.thread, job: input.job } as ServerMessage;
  }
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
