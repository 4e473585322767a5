/**
 * What a storage element is to the rest of the system: files stored only with
 * their expected size and checksum, and typed errors for what goes wrong.
 */
import type { Readable } from "node:stream";
import { parseChecksum } from "./checksum.js";

/** What a caller promises about a file it stores; the storage element holds it to that. */
export interface ExpectedFile {
  sizeBytes: number;
  /** `adler32:<8 hex>` or `sha256:<64 hex>`. */
  checksum: string;
}

/** What a storage element knows about a stored file. */
export interface StoredFile {
  sizeBytes: number;
  /** Always Adler-32, the checksum ATLAS catalogues by. */
  checksum: string;
  sha256: string;
}

export interface PutResult extends StoredFile {
  /** False when an identical file was already there (a repeated put is not an error). */
  created: boolean;
}

/**
 * A place that holds files by path. Files are immutable: a path once written
 * holds the same bytes until deleted, so a checksum checked once stays true.
 * `put` consumes `data` when it succeeds; when it fails the caller still owns
 * the stream and closes it.
 */
export interface StorageElement {
  put(path: string, data: Readable | Uint8Array, expected: ExpectedFile): Promise<PutResult>;
  /** Throws StorageError NOT_FOUND when there is no such file. */
  get(path: string): Promise<Readable>;
  stat(path: string): Promise<StoredFile | null>;
  /** Paths starting with `prefix` (a plain string prefix, "" for all), sorted. */
  list(prefix: string): Promise<string[]>;
  /** True when a file was there to delete. */
  delete(path: string): Promise<boolean>;
  /**
   * Copies a file from another element into this one without its bytes
   * passing through this process (a third-party copy), verified here before
   * it appears. Null when this pair of elements cannot; the caller streams.
   */
  copyFrom?(source: StorageElement, path: string, expected: ExpectedFile): Promise<PutResult | null>;
  /**
   * The URL a client outside the server (a pilot, the CLI) reaches a file at
   * directly. Absent for elements that clients reach through the server.
   */
  directUrl?(path: string): string;
  /** The URL of the element's own directory, files under it at `/<path>`; with directUrl. */
  directBaseUrl?(): string;
  /**
   * Removes temp files older than `maxAgeMs`: what a writer that died
   * mid-put (a crashed node, a killed server's copy) left. Answers how many.
   */
  sweepTemp?(maxAgeMs: number, nowMs?: number): Promise<number>;
}

export type StorageErrorCode =
  | "BAD_PATH"
  | "BAD_CHECKSUM"
  | "BAD_SIZE"
  | "NOT_FOUND"
  | "EXISTS"
  | "SIZE_MISMATCH"
  | "CHECKSUM_MISMATCH"
  | "TOO_LARGE";

export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    readonly code: StorageErrorCode,
    readonly path: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/** Parses an expected checksum or throws BAD_CHECKSUM naming the path it was for. */
export function requireChecksum(path: string, text: string) {
  const parsed = parseChecksum(text);
  if (parsed === null) {
    throw new StorageError(
      "BAD_CHECKSUM",
      path,
      `checksum ${JSON.stringify(text)} for ${path} is not adler32:<8 hex> or sha256:<64 hex>`,
    );
  }
  return parsed;
}

/** Does a file have this checksum, in whichever algorithm the checksum is written? */
export function hasChecksum(file: StoredFile, checksumText: string): boolean {
  const wanted = parseChecksum(checksumText);
  if (wanted === null) return false;
  return wanted.text === (wanted.algorithm === "adler32" ? file.checksum : file.sha256);
}

/** Does a stored file have the size and checksum a caller expects? */
export function storedFileMatches(stored: StoredFile, expected: ExpectedFile): boolean {
  return stored.sizeBytes === expected.sizeBytes && hasChecksum(stored, expected.checksum);
}
