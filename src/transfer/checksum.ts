/** File checksums as the grid writes them (`adler32:...`, `sha256:...`): parsing, and computing them over bytes, streams and files. */
import { createHash, type Hash } from "node:crypto";

export type ChecksumAlgorithm = "adler32" | "sha256";

/** A checksum in its written form, `adler32:0a1b2c3d` or `sha256:<64 hex>`, split and lower-cased. */
export interface ParsedChecksum {
  algorithm: ChecksumAlgorithm;
  hex: string;
  /** The canonical written form (lower-case hex). */
  text: string;
}

const CHECKSUM_PATTERNS: Record<ChecksumAlgorithm, RegExp> = {
  adler32: /^[0-9a-f]{8}$/,
  sha256: /^[0-9a-f]{64}$/,
};

/** Null when the text is not a checksum this system knows. */
export function parseChecksum(text: string): ParsedChecksum | null {
  const colon = text.indexOf(":");
  if (colon < 0) return null;
  const algorithm = text.slice(0, colon).toLowerCase();
  const hex = text.slice(colon + 1).toLowerCase();
  if (algorithm !== "adler32" && algorithm !== "sha256") return null;
  if (!CHECKSUM_PATTERNS[algorithm].test(hex)) return null;
  return { algorithm, hex, text: `${algorithm}:${hex}` };
}

/** Fed a byte stream chunk by chunk, answers its checksum in written form (feed nothing after digest). */
export interface Checksummer {
  update(chunk: Uint8Array): void;
  digest(): string;
}

const ADLER_MOD = 65521;
/** The most bytes that can be summed before the running sums could exceed 2^32 (zlib's NMAX). */
const ADLER_NMAX = 5552;

/** Adler-32 as ATLAS/Rucio use it, computed incrementally so files never sit whole in memory. */
export function createAdler32(): Checksummer {
  let a = 1;
  let b = 0;
  return {
    update(chunk) {
      let i = 0;
      while (i < chunk.length) {
        const end = Math.min(i + ADLER_NMAX, chunk.length);
        for (; i < end; i++) {
          a += chunk[i]!;
          b += a;
        }
        a %= ADLER_MOD;
        b %= ADLER_MOD;
      }
    },
    digest() {
      return `adler32:${(((b << 16) | a) >>> 0).toString(16).padStart(8, "0")}`;
    },
  };
}

function createSha256(): Checksummer {
  const hash: Hash = createHash("sha256");
  // A Hash digests once; remembering the answer lets digest() be asked again like Adler-32's.
  let digest: string | undefined;
  return {
    update(chunk) {
      hash.update(chunk);
    },
    digest() {
      digest ??= `sha256:${hash.digest("hex")}`;
      return digest;
    },
  };
}

export function createChecksummer(algorithm: ChecksumAlgorithm): Checksummer {
  return algorithm === "adler32" ? createAdler32() : createSha256();
}

export function checksumOfBytes(bytes: Uint8Array, algorithm: ChecksumAlgorithm = "adler32"): string {
  const summer = createChecksummer(algorithm);
  summer.update(bytes);
  return summer.digest();
}

/** Reads a stream to its end; answers its size and checksum. */
export async function checksumOfStream(
  stream: AsyncIterable<Uint8Array>,
  algorithm: ChecksumAlgorithm = "adler32",
): Promise<{ sizeBytes: number; checksum: string }> {
  const summer = createChecksummer(algorithm);
  let sizeBytes = 0;
  for await (const chunk of stream) {
    summer.update(chunk);
    sizeBytes += chunk.length;
  }
  return { sizeBytes, checksum: summer.digest() };
}

/** Size and both checksums a stored file is known by, from one pass over its bytes. */
export interface FileDigest {
  sizeBytes: number;
  checksum: string;
  sha256: string;
}

export function createFileDigester(): {
  update(chunk: Uint8Array): void;
  sizeBytes(): number;
  digest(): FileDigest;
} {
  const adler32 = createAdler32();
  const sha256 = createSha256();
  let sizeBytes = 0;
  return {
    update(chunk) {
      sizeBytes += chunk.length;
      adler32.update(chunk);
      sha256.update(chunk);
    },
    sizeBytes: () => sizeBytes,
    digest: () => ({ sizeBytes, checksum: adler32.digest(), sha256: sha256.digest() }),
  };
}
