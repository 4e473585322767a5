import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  checksumOfBytes,
  checksumOfStream,
  createAdler32,
  createFileDigester,
  parseChecksum,
} from "../../src/transfer/index.js";
import { bytes } from "./helpers.js";

/** The textbook definition, one modulo per byte: slow, obviously right. */
function naiveAdler32(data: Uint8Array): string {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return `adler32:${(b * 65536 + a).toString(16).padStart(8, "0")}`;
}

describe("adler32", () => {
  it("matches known values", () => {
    expect(checksumOfBytes(Buffer.from("Wikipedia"))).toBe("adler32:11e60398");
    expect(checksumOfBytes(Buffer.alloc(0))).toBe("adler32:00000001");
  });

  it("gives the same answer however the stream is chunked, including long runs of 0xff", () => {
    const data = Buffer.concat([bytes(200_000, 7), Buffer.alloc(70_000, 0xff)]);
    const summer = createAdler32();
    let offset = 0;
    for (const size of [1, 5551, 5552, 5553, 65_536, 3]) {
      summer.update(data.subarray(offset, offset + size));
      offset += size;
    }
    summer.update(data.subarray(offset));
    expect(summer.digest()).toBe(naiveAdler32(data));
    expect(checksumOfBytes(data)).toBe(naiveAdler32(data));
  });

  it("streams a Readable to its size and checksum", async () => {
    const data = bytes(50_000, 3);
    const result = await checksumOfStream(Readable.from([data.subarray(0, 10), data.subarray(10)]));
    expect(result).toEqual({ sizeBytes: 50_000, checksum: naiveAdler32(data) });
  });
});

describe("sha256 and the file digest", () => {
  it("computes both checksums in one pass", () => {
    const data = bytes(10_000, 9);
    const digester = createFileDigester();
    digester.update(data.subarray(0, 4000));
    digester.update(data.subarray(4000));
    expect(digester.digest()).toEqual({
      sizeBytes: 10_000,
      checksum: naiveAdler32(data),
      sha256: `sha256:${createHash("sha256").update(data).digest("hex")}`,
    });
    expect(checksumOfBytes(data, "sha256")).toBe(digester.digest().sha256);
  });
});

describe("parseChecksum", () => {
  it("accepts and normalises the two written forms", () => {
    expect(parseChecksum("ADLER32:0A1B2C3D")).toEqual({
      algorithm: "adler32",
      hex: "0a1b2c3d",
      text: "adler32:0a1b2c3d",
    });
    expect(parseChecksum(`sha256:${"ab".repeat(32)}`)?.algorithm).toBe("sha256");
  });

  it("refuses anything else", () => {
    for (const bad of [
      "",
      "0a1b2c3d",
      "adler32:",
      "adler32:0a1b2c3",
      "adler32:0a1b2c3g",
      "md5:00",
      "sha256:abc",
    ]) {
      expect(parseChecksum(bad)).toBeNull();
    }
  });
});
