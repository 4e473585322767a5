/**
 * Length-prefixed, checksummed frames: the unit the durable store writes to
 * its log and its snapshot. A frame is `u32 length | u32 crc32 | payload`
 * (little-endian). A crash can leave the last frame of a log torn (short, or
 * with bytes that do not match their checksum); reading stops there, so what
 * is read back is always a prefix of what was written, never half a record.
 */
import { crc32 } from "node:zlib";

export const FRAME_HEADER_BYTES = 8;
/** Far above any real frame, low enough that a garbage length is recognised at once. */
export const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024 * 1024;

export function frameOf(payload: Uint8Array): Buffer {
  if (payload.length === 0 || payload.length > MAX_FRAME_PAYLOAD_BYTES)
    throw new RangeError(`a frame holds 1 to ${MAX_FRAME_PAYLOAD_BYTES} bytes, not ${payload.length}`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export interface ReadFrames {
  /** The whole frames, in order (views into the bytes read). */
  payloads: Buffer[];
  /** Where the whole frames end: anything after is a torn tail. */
  validBytes: number;
}

/** Every whole frame from the start of `bytes`, stopping at the first short or mismatched one. */
export function readFrames(bytes: Buffer): ReadFrames {
  const payloads: Buffer[] = [];
  let offset = 0;
  while (bytes.length - offset >= FRAME_HEADER_BYTES) {
    const length = bytes.readUInt32LE(offset);
    // Length 0 is never written: zeroed blocks (a crash before the data reached the disk) are torn, not empty frames.
    if (length === 0 || length > MAX_FRAME_PAYLOAD_BYTES) break;
    const end = offset + FRAME_HEADER_BYTES + length;
    if (end > bytes.length) break;
    const payload = bytes.subarray(offset + FRAME_HEADER_BYTES, end);
    if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) break;
    payloads.push(payload);
    offset = end;
  }
  return { payloads, validBytes: offset };
}
