import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { checksumOfBytes } from "../../src/transfer/index.js";

/** Temp directories made by a test, removed after it whatever happened. */
export function useTempDirs(): () => Promise<string> {
  const made: string[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), "panda-transfer-"));
    made.push(dir);
    return dir;
  };
}

/** Deterministic pseudo-random bytes, so failures reproduce. */
export function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function expectedOf(data: Buffer): { sizeBytes: number; checksum: string } {
  return { sizeBytes: data.length, checksum: checksumOfBytes(data) };
}

/** The error a promise rejects with, checked to be of the given class; fails the test if it resolves. */
export async function rejectionOf<E extends Error>(
  promise: Promise<unknown>,
  errorClass: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof errorClass) return err;
    throw err;
  }
  throw new Error(`expected a ${errorClass.name}, got success`);
}
