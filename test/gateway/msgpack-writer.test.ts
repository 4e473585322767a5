import { Packr, unpack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decode, encode, encodeFrame } from "../../src/protocol/codec.js";
import { MsgpackWriter } from "../../src/protocol/msgpack-writer.js";

/** msgpackr as the codec configured it before the writer: what every stored record was written with. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const strings = [
  "",
  "a",
  "x".repeat(31),
  "x".repeat(32),
  "x".repeat(63),
  "x".repeat(64),
  "x".repeat(255),
  "x".repeat(256),
  "x".repeat(65_535),
  "x".repeat(70_000),
  "café",
  `${"é".repeat(40)}`,
  "naïve résumé ünïcödé and more text past sixty-four characters of it",
  "emoji 🚀 and 中文",
  `${"🚀".repeat(100)}`,
];

const numbers = [
  0,
  1,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 32 - 1,
  2 ** 32,
  1_796_662_795_363,
  Number.MAX_SAFE_INTEGER,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32_768,
  -32_769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  1.5,
  -2.25,
  0.1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];

function objectOf(size: number, value: (i: number) => unknown): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let i = 0; i < size; i++) object[`k${i}`] = value(i);
  return object;
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const values: [string, unknown][] = [
  ...strings.map((s): [string, unknown] => [`string of ${s.length}`, s]),
  ...numbers.map((n): [string, unknown] => [`number ${n}`, n]),
  ["true", true],
  ["false", false],
  ["null", null],
  ["array of 15", Array.from({ length: 15 }, (_, i) => i)],
  ["array of 16", Array.from({ length: 16 }, (_, i) => `s${i}`)],
  ["array of 70,000", Array.from({ length: 70_000 }, (_, i) => i % 300)],
  ["object of 15", objectOf(15, (i) => i)],
  ["object of 16", objectOf(16, (i) => `v${i}`)],
  // Outgrows the first chunk while its header is still to be written.
  ["object of 20 large members", objectOf(20, (i) => "y".repeat(1000 + i))],
  ["nested", { a: [1, { b: [null, { c: "d" }], e: [] }], f: {}, g: [[[]]] }],
  ["integer-like keys", { "10": "ten", "2": "two", name: "n" }],
  ["Date", new Date(1_796_662_795_363)],
  ["Buffer", Buffer.from([0, 1, 2, 255])],
  ["Map", new Map([["a", 1]])],
  ["Set", new Set([1, 2])],
  ["bigint", 2n ** 60n],
  ["class instance", new Point(1, 2)],
  ["object with a Date", { at: new Date(5), bytes: Buffer.from("ab"), n: 1 }],
];

describe("MsgpackWriter", () => {
  it.each(values)("encodes %s so that it decodes as msgpackr's own bytes do", (_, value) => {
    expect(decode(encode(value))).toEqual(unpack(packr.pack(value)));
  });

  it("writes an object of more than 65,535 members, which msgpackr refuses", () => {
    const value = objectOf(70_000, (i) => i);
    expect(() => packr.pack(value)).toThrow(/too large/);
    expect(decode(encode(value))).toEqual(value);
  });

  it("writes small maps with a one-byte header and ASCII strings byte for byte", () => {
    expect([...encode({ a: 1 })]).toEqual([0x81, 0xa1, 0x61, 0x01]);
    expect([...encode(["ab", -1, 300])]).toEqual([0x93, 0xa2, 0x61, 0x62, 0xff, 0xcd, 0x01, 0x2c]);
    expect([...encode(0.5)]).toEqual([0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
  });

  it("keeps an undefined member in a record and leaves it out of a wire frame", () => {
    const value = { a: 1, b: undefined, c: [undefined] };
    expect(decode(encode(value))).toEqual({ a: 1, b: undefined, c: [undefined] });
    expect(Object.hasOwn(decode(encode(value)) as object, "b")).toBe(true);
    const frame = decode(encodeFrame(value)) as Record<string, unknown>;
    expect(Object.hasOwn(frame, "b")).toBe(false);
    expect(frame).toEqual({ a: 1, c: [undefined] });
  });

  it("leaves earlier values' bytes alone while later ones fill and replace the chunk", () => {
    const writer = new MsgpackWriter((value) => packr.pack(value), { skipUndefined: false });
    const kept: [unknown, Buffer][] = [];
    for (let i = 0; i < 2000; i++) {
      const value =
        i % 97 === 0 ? { big: "z".repeat(20_000 + i), i } : { i, name: `job-${i}`, list: [i, i + 1] };
      kept.push([value, writer.encode(value)]);
    }
    for (const [value, bytes] of kept) expect(unpack(bytes)).toEqual(value);
  });

  it("does not let a small value keep a large buffer alive", () => {
    const writer = new MsgpackWriter((value) => packr.pack(value), { skipUndefined: false });
    writer.encode({ big: "q".repeat(100_000) });
    const small = writer.encode({ small: 1 });
    expect(small.buffer.byteLength).toBeLessThanOrEqual(8192);
  });
});
