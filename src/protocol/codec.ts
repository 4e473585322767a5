/**
 * One msgpack encoding for every byte that leaves a process: snapshots,
 * history, effects and wire frames. `MsgpackWriter` writes the plain values
 * they are made of; msgpackr, configured here, writes any other type inside
 * them and decodes everything. `useRecords: false` keeps the encoding plain
 * msgpack, so a pilot written in another language can read it.
 */
import { type Options, Packr } from "msgpackr";
import type { z } from "zod";
import { MsgpackWriter } from "./msgpack-writer.js";

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * msgpackr encodes into one buffer shared by every Packr of the process and
 * hands out views of it; a full buffer is replaced by one of the same size,
 * and a value that does not fit grows it to four times the value, for good.
 * So after one large value (a task's creation with its jobs, a durable
 * store's snapshot) every small one was a view of a buffer of 160 KB or
 * more, and the embedded store, which keeps what it is given (history
 * entries, timers), kept each such buffer alive for its longest-lived entry
 * (3.6 GB of ArrayBuffers were alive late in a simulated day of grid-2026).
 * Once a value has grown the buffer past `LARGEST_SHARED_BYTES` the encoder
 * starts again on `ENCODE_BUFFER_BYTES`. Values up to a quarter of the
 * former keep their buffer: starting again after each of those
 * (analysis-latency encodes many) cost a fifth more CPU.
 */
const ENCODE_BUFFER_BYTES = 8192;
const LARGEST_SHARED_BYTES = 65_536;

/**
 * Packs with any Packr of the process, then puts the shared buffer back to
 * its small size if the value grew it (see above). Every pack goes through
 * here: the buffer is one for all of them.
 */
export function packWith(packer: Packr, value: unknown): Buffer {
  const bytes = packer.pack(value);
  if (bytes.buffer.byteLength > LARGEST_SHARED_BYTES)
    packer.useBuffer(Buffer.allocUnsafeSlow(ENCODE_BUFFER_BYTES));
  return bytes;
}

const recordWriter = new MsgpackWriter((value) => packWith(packr, value), { skipUndefined: false });

export function encode(value: unknown): Buffer {
  return recordWriter.encode(value);
}

/**
 * The same plain msgpack for wire frames, but a member whose value is
 * `undefined` is left out, by the writer and by this Packr for a member of
 * another type: msgpackr would write it as an extension type that decoders
 * in other languages do not know, and the protocol says an absent optional
 * field is absent. Cheaper than copying every frame without them.
 */
const framePackr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  // Documented in msgpackr's README, missing from its type definitions.
  skipValues: [undefined],
} as Options);

const frameWriter = new MsgpackWriter((value) => packWith(framePackr, value), { skipUndefined: true });

export function encodeFrame(frame: object): Buffer {
  return frameWriter.encode(frame);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

export type CodecErrorCode = "MALFORMED" | "SCHEMA" | "TOO_LARGE";

/** A value that could not be decoded or did not match its schema. */
export class CodecError extends Error {
  override readonly name = "CodecError";
  constructor(
    readonly code: CodecErrorCode,
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

/** Turns zod issues into `path: message` pairs that name the bad field. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join(".") : "(root)",
    message: issue.message,
  }));
}

/** Validates an already decoded value; throws `CodecError("SCHEMA")` naming each bad field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    throw new CodecError("SCHEMA", `invalid ${what}: ${detail}`, issues);
  }
  return parsed.data;
}

/** Decodes bytes and validates them; throws `CodecError` with a code, never anything else. */
export function decodeWith<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array,
  what: string,
  maxBytes = Number.POSITIVE_INFINITY,
): z.output<S> {
  if (bytes.byteLength > maxBytes) {
    throw new CodecError(
      "TOO_LARGE",
      `${what} of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`,
    );
  }
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    throw new CodecError("MALFORMED", `${what} is not valid msgpack: ${(err as Error).message}`);
  }
  return validate(schema, value, what);
}
