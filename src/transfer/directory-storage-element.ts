/**
 * A storage element on a local directory. A file appears under its path only
 * complete and verified: it is written to a temp file, checked against the
 * expected size and checksum, then hard-linked into place, which (unlike a
 * rename) fails instead of replacing a file another writer published first.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream, type Dirent } from "node:fs";
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { createFileDigester } from "./checksum.js";
import {
  type ExpectedFile,
  type PutResult,
  requireChecksum,
  type StorageElement,
  type StoredFile,
  storedFileMatches,
} from "./storage-element.js";
import {
  checksumMismatch,
  chunksOf,
  drainInput,
  existsError,
  notFound,
  requireSize,
  sizeMismatch,
} from "./storage-element-errors.js";
import { listPrefixDirectory, RESERVED_TOP_DIRECTORY, storagePathSegments } from "./storage-path.js";

/**
 * Checksums cached beside the data, valid only while the file is the very
 * inode (and modification time) they were computed for.
 */
const MetadataSchema = z.object({
  sizeBytes: z.number(),
  checksum: z.string(),
  sha256: z.string(),
  ino: z.number(),
  mtimeMs: z.number(),
});
type Metadata = z.infer<typeof MetadataSchema>;

/** Missing-file errors from the file system, whichever way a path turns out not to be a file. */
const ABSENT_CODES = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}

function isAbsent(err: unknown): boolean {
  return ABSENT_CODES.has(errnoCode(err) ?? "");
}

export class DirectoryStorageElement implements StorageElement {
  readonly root: string;
  private readonly tempDir: string;
  private readonly metaDir: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.tempDir = join(this.root, RESERVED_TOP_DIRECTORY, "tmp");
    this.metaDir = join(this.root, RESERVED_TOP_DIRECTORY, "meta");
  }

  async put(path: string, data: Readable | Uint8Array, expected: ExpectedFile): Promise<PutResult> {
    const segments = storagePathSegments(path);
    requireChecksum(path, expected.checksum);
    requireSize(path, expected);
    const existing = await this.stat(path);
    if (existing !== null) return this.acceptExisting(path, existing, expected, data);

    await mkdir(this.tempDir, { recursive: true });
    const tempPath = join(this.tempDir, randomUUID());
    try {
      const written = await this.writeVerified(tempPath, path, data, expected);
      return await this.publish(tempPath, segments, path, expected, written);
    } finally {
      await unlink(tempPath).catch(() => undefined);
    }
  }

  async get(path: string): Promise<Readable> {
    const file = join(this.root, ...storagePathSegments(path));
    let handle: FileHandle;
    try {
      handle = await open(file, "r");
    } catch (err) {
      if (isAbsent(err)) throw notFound(path);
      throw err;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw notFound(path);
    }
    return handle.createReadStream();
  }

  async stat(path: string): Promise<StoredFile | null> {
    const segments = storagePathSegments(path);
    const file = join(this.root, ...segments);
    try {
      const info = await stat(file);
      if (!info.isFile()) return null;
      const cached = await this.readMetadata(segments);
      if (cached?.sizeBytes === info.size && cached.ino === info.ino && cached.mtimeMs === info.mtimeMs) {
        return { sizeBytes: cached.sizeBytes, checksum: cached.checksum, sha256: cached.sha256 };
      }
      // Put there by other means, or its metadata was lost: compute once and remember.
      const computed = await checksumFile(file);
      await this.writeMetadata(segments, { ...computed, ino: info.ino, mtimeMs: info.mtimeMs });
      return computed;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const directory = listPrefixDirectory(prefix);
    const found: string[] = [];
    await this.walk(join(this.root, ...directory), directory.join("/"), found);
    return found.filter((p) => p.startsWith(prefix)).sort();
  }

  async delete(path: string): Promise<boolean> {
    const segments = storagePathSegments(path);
    try {
      await unlink(join(this.root, ...segments));
    } catch (err) {
      // EPERM is what some systems answer for unlinking a directory: not a file, so nothing deleted.
      if (isAbsent(err) || errnoCode(err) === "EPERM") return false;
      throw err;
    }
    await unlink(this.metadataPath(segments)).catch(() => undefined);
    return true;
  }

  async sweepTemp(maxAgeMs: number, nowMs = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tempDir);
    } catch (err) {
      if (isAbsent(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const file = join(this.tempDir, name);
      const info = await stat(file).catch(() => null);
      // A write in progress keeps touching its file: only one left alone this long is abandoned.
      if (info === null || !(nowMs - info.mtimeMs > maxAgeMs)) continue;
      await unlink(file).then(
        () => (removed += 1),
        () => undefined,
      );
    }
    return removed;
  }

  private async acceptExisting(
    path: string,
    existing: StoredFile,
    expected: ExpectedFile,
    data: Readable | Uint8Array,
  ): Promise<PutResult> {
    if (!storedFileMatches(existing, expected)) throw existsError(path, existing, expected);
    await drainInput(data);
    return { ...existing, created: false };
  }

  /** Streams data into a new temp file, hashing as it goes, and refuses anything not as expected. */
  private async writeVerified(
    tempPath: string,
    path: string,
    data: Readable | Uint8Array,
    expected: ExpectedFile,
  ): Promise<Metadata> {
    const digester = createFileDigester();
    await pipeline(
      chunksOf(data),
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) {
          digester.update(chunk);
          // Stop at once rather than fill the disk with a file that is already wrong.
          if (digester.sizeBytes() > expected.sizeBytes) {
            throw sizeMismatch(path, expected.sizeBytes, digester.sizeBytes(), "at least ");
          }
          yield chunk;
        }
      },
      createWriteStream(tempPath, { flags: "wx", flush: true }),
    );
    const actual = digester.digest();
    if (actual.sizeBytes !== expected.sizeBytes)
      throw sizeMismatch(path, expected.sizeBytes, actual.sizeBytes, "");
    if (!storedFileMatches(actual, expected)) throw checksumMismatch(path, actual, expected);
    const info = await stat(tempPath);
    return { ...actual, ino: info.ino, mtimeMs: info.mtimeMs };
  }

  private async publish(
    tempPath: string,
    segments: string[],
    path: string,
    expected: ExpectedFile,
    written: Metadata,
  ): Promise<PutResult> {
    const file = join(this.root, ...segments);
    try {
      await mkdir(dirname(file), { recursive: true });
      await link(tempPath, file);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== "EEXIST" && code !== "ENOTDIR") throw err;
      // Another writer got there first (or a parent is a file): fine only if it is this very file.
      const existing = await this.stat(path);
      if (existing !== null && storedFileMatches(existing, expected)) return { ...existing, created: false };
      throw existsError(path, existing, expected);
    }
    await this.writeMetadata(segments, written);
    return {
      sizeBytes: written.sizeBytes,
      checksum: written.checksum,
      sha256: written.sha256,
      created: true,
    };
  }

  private metadataPath(segments: string[]): string {
    return `${join(this.metaDir, ...segments)}.json`;
  }

  private async readMetadata(segments: string[]): Promise<Metadata | null> {
    try {
      const parsed = MetadataSchema.safeParse(
        JSON.parse(await readFile(this.metadataPath(segments), "utf8")),
      );
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** Metadata is a cache that stat rebuilds, so failing to write it must not fail the caller. */
  private async writeMetadata(segments: string[], metadata: Metadata): Promise<void> {
    const target = this.metadataPath(segments);
    const temp = join(this.tempDir, `${randomUUID()}.json`);
    try {
      await mkdir(this.tempDir, { recursive: true });
      await mkdir(dirname(target), { recursive: true });
      await writeFile(temp, JSON.stringify(metadata));
      await rename(temp, target);
    } catch {
      await unlink(temp).catch(() => undefined);
    }
  }

  private async walk(directory: string, relative: string, found: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return;
      throw err;
    }
    for (const entry of entries) {
      if (relative === "" && entry.name === RESERVED_TOP_DIRECTORY) continue;
      const child = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await this.walk(join(directory, entry.name), child, found);
      else if (entry.isFile()) found.push(child);
    }
  }
}

async function checksumFile(file: string): Promise<StoredFile> {
  const digester = createFileDigester();
  for await (const chunk of createReadStream(file)) digester.update(chunk as Buffer);
  return digester.digest();
}
