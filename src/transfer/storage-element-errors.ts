/**
 * What every storage element says the same way: the typed errors for a
 * missing file, a wrong size or checksum and a path already taken, and the
 * reading of its input, whatever kind it came as.
 */
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type ExpectedFile, StorageError, type StoredFile } from "./storage-element.js";

/** Byte chunks of either kind of input, strings (a Readable with an encoding) turned back to bytes. */
export async function* chunksOf(data: Readable | Uint8Array): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  for await (const chunk of data)
    yield typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
}

/** Reads an input to its end unused, so a sender (an HTTP upload) sees its request completed. */
export async function drainInput(data: Readable | Uint8Array): Promise<void> {
  if (data instanceof Uint8Array) return;
  data.resume();
  await finished(data);
}

export function notFound(path: string): StorageError {
  return new StorageError("NOT_FOUND", path, `no file at ${path}`);
}

export function sizeMismatch(
  path: string,
  expectedBytes: number,
  actualBytes: number,
  qualifier: string,
): StorageError {
  return new StorageError(
    "SIZE_MISMATCH",
    path,
    `${path}: data is ${qualifier}${actualBytes} bytes, expected ${expectedBytes}`,
    { expectedBytes, actualBytes },
  );
}

/** `where` says whose bytes were wrong: "data" by default, "the source" for a copy. */
export function checksumMismatch(
  path: string,
  actual: StoredFile,
  expected: ExpectedFile,
  where = "data",
): StorageError {
  return new StorageError(
    "CHECKSUM_MISMATCH",
    path,
    `${path}: ${where} has checksum ${actual.checksum} (${actual.sha256}), expected ${expected.checksum}`,
    { expected: expected.checksum, actual: actual.checksum, actualSha256: actual.sha256 },
  );
}

export function existsError(path: string, existing: StoredFile | null, expected: ExpectedFile): StorageError {
  const message =
    existing === null
      ? `${path} cannot be created: a directory or file is in the way`
      : `${path} already exists with different content`;
  return new StorageError("EXISTS", path, message, { existing, expected });
}

/** Refuses an expectation that is not a size and checksum at all (BAD_SIZE; BAD_CHECKSUM via requireChecksum). */
export function requireSize(path: string, expected: ExpectedFile): void {
  if (!Number.isSafeInteger(expected.sizeBytes) || expected.sizeBytes < 0) {
    throw new StorageError(
      "BAD_SIZE",
      path,
      `expected size ${expected.sizeBytes} is not a non-negative integer`,
    );
  }
}
