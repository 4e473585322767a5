/**
 * A plain msgpack writer for the values the node encodes on every
 * transition and frame: strings, numbers, booleans, null, arrays and plain
 * objects. msgpackr's general `pack` spent about a seventh of the node's busy
 * time in the dispatch bench on these (its per-call set-up, a
 * `hasOwnProperty` call per key, a 16-bit map header on every object); this
 * writes the same values with less work and a one-byte header for small maps.
 * Anything else (Map, Set, Date, bytes, bigint, class instances) is handed to
 * msgpackr and its bytes copied in, so every value encodes as msgpackr would
 * decode it back. The output is plain msgpack: msgpackr's `unpack`, or any
 * other language's decoder, reads it.
 */

/** Values are written into chunks of this size and handed out as views of them. */
const CHUNK_BYTES = 8192;
/** Less room than this left in a chunk: the next value starts a new one. */
const CHUNK_TAIL_BYTES = 1024;
/** Strings shorter than this are written by a loop that gives up at the first non-ASCII character. */
const ASCII_LOOP_CHARS = 64;

/** Skip an object's members whose value is `undefined` (wire frames) or write them (records). */
export interface WriterOptions {
  skipUndefined: boolean;
}

/**
 * One writer per encoding. Each call writes into the current chunk after the
 * previous value and returns a view of its bytes, as msgpackr does; a value
 * that outgrows the chunk moves to a buffer of its own, and the next value
 * starts again on a chunk of the usual size, so a small value kept for long
 * never holds a large buffer alive.
 */
export class MsgpackWriter {
  private buf: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private pos = 0;
  private start = 0;

  constructor(
    private readonly fallback: (value: unknown) => Buffer,
    private readonly options: WriterOptions,
  ) {}

  encode(value: unknown): Buffer {
    if (this.buf.length - this.pos < CHUNK_TAIL_BYTES) this.newChunk(CHUNK_BYTES);
    this.start = this.pos;
    this.value(value);
    const bytes = this.buf.subarray(this.start, this.pos);
    if (this.buf.length > CHUNK_BYTES) this.newChunk(CHUNK_BYTES);
    return bytes;
  }

  private newChunk(bytes: number): void {
    this.buf = Buffer.allocUnsafeSlow(bytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.pos = 0;
  }

  /** Room for `bytes` more: the value written so far moves to a buffer twice the size it needs. */
  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const written = this.pos - this.start;
    const old = this.buf;
    const oldStart = this.start;
    this.newChunk(Math.max(CHUNK_BYTES, 2 * (written + bytes)));
    old.copy(this.buf, 0, oldStart, oldStart + written);
    this.start = 0;
    this.pos = written;
  }

  private value(value: unknown): void {
    const type = typeof value;
    if (type === "string") this.string(value as string);
    else if (type === "number") this.number(value as number);
    else if (type === "boolean") {
      this.ensure(1);
      this.buf[this.pos++] = value ? 0xc3 : 0xc2;
    } else if (type === "undefined") {
      // msgpackr's own mark for undefined (fixext 1, type 0), which its decoder turns back into undefined.
      this.ensure(3);
      this.buf[this.pos++] = 0xd4;
      this.buf[this.pos++] = 0;
      this.buf[this.pos++] = 0;
    } else if (value === null) {
      this.ensure(1);
      this.buf[this.pos++] = 0xc0;
    } else if (type === "object") {
      const made = (value as object).constructor;
      if (made === Array) this.array(value as unknown[]);
      else if (made === Object) this.object(value as Record<string, unknown>);
      else this.foreign(value);
    } else this.foreign(value);
  }

  private string(value: string): void {
    const length = value.length;
    if (length < ASCII_LOOP_CHARS) {
      const header = length < 32 ? 1 : 2;
      this.ensure(header + length);
      const buf = this.buf;
      let at = this.pos + header;
      for (let i = 0; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) {
          this.utf8String(value);
          return;
        }
        buf[at++] = c;
      }
      if (header === 1) buf[this.pos] = 0xa0 | length;
      else {
        buf[this.pos] = 0xd9;
        buf[this.pos + 1] = length;
      }
      this.pos = at;
      return;
    }
    this.utf8String(value);
  }

  /** Any string: the header is sized for the most bytes it could take (str 8 for a short one is valid msgpack). */
  private utf8String(value: string): void {
    const maxBytes = value.length * 3;
    const header = maxBytes < 32 ? 1 : maxBytes < 0x100 ? 2 : maxBytes < 0x10000 ? 3 : 5;
    this.ensure(header + maxBytes);
    const written = this.buf.write(value, this.pos + header, maxBytes, "utf8");
    const buf = this.buf;
    if (header === 1) buf[this.pos] = 0xa0 | written;
    else if (header === 2) {
      buf[this.pos] = 0xd9;
      buf[this.pos + 1] = written;
    } else if (header === 3) {
      buf[this.pos] = 0xda;
      this.view.setUint16(this.pos + 1, written);
    } else {
      buf[this.pos] = 0xdb;
      this.view.setUint32(this.pos + 1, written);
    }
    this.pos += header + written;
  }

  /** As msgpackr writes numbers: the smallest integer form up to 32 bits, a double for the rest. */
  private number(value: number): void {
    this.ensure(9);
    const buf = this.buf;
    if (value >>> 0 === value) {
      if (value < 0x80) buf[this.pos++] = value;
      else if (value < 0x100) {
        buf[this.pos++] = 0xcc;
        buf[this.pos++] = value;
      } else if (value < 0x10000) {
        buf[this.pos++] = 0xcd;
        this.view.setUint16(this.pos, value);
        this.pos += 2;
      } else {
        buf[this.pos++] = 0xce;
        this.view.setUint32(this.pos, value);
        this.pos += 4;
      }
    } else if (value >> 0 === value) {
      if (value >= -0x20) buf[this.pos++] = 0x100 + value;
      else if (value >= -0x80) {
        buf[this.pos++] = 0xd0;
        buf[this.pos++] = value + 0x100;
      } else if (value >= -0x8000) {
        buf[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, value);
        this.pos += 2;
      } else {
        buf[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, value);
        this.pos += 4;
      }
    } else {
      buf[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, value);
      this.pos += 8;
    }
  }

  private array(value: unknown[]): void {
    const length = value.length;
    this.ensure(5);
    if (length < 16) this.buf[this.pos++] = 0x90 | length;
    else if (length < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, length);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    for (let i = 0; i < length; i++) this.value(value[i]);
  }

  /** A one-byte header, counted as the members are written; the rare object of 16 or more moves its members up. */
  private object(value: Record<string, unknown>): void {
    this.ensure(1);
    // Offsets from the value's start: `ensure` may move what is written so far to a bigger buffer.
    const headerOffset = this.pos++ - this.start;
    const skipUndefined = this.options.skipUndefined;
    let size = 0;
    for (const key in value) {
      const member = value[key];
      if (member === undefined && skipUndefined) continue;
      this.string(key);
      this.value(member);
      size++;
    }
    if (size < 16) {
      this.buf[this.start + headerOffset] = 0x80 | size;
      return;
    }
    const extra = size < 0x10000 ? 2 : 4;
    this.ensure(extra);
    const at = this.start + headerOffset;
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    if (extra === 2) {
      this.buf[at] = 0xde;
      this.view.setUint16(at + 1, size);
    } else {
      this.buf[at] = 0xdf;
      this.view.setUint32(at + 1, size);
    }
  }

  /** A value of another type, as msgpackr writes it. */
  private foreign(value: unknown): void {
    const bytes = this.fallback(value);
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }
}
