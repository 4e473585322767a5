/**
 * A storage element on an XRootD server, driven through xrdcp and xrdfs. A
 * file appears under its path only complete and verified: it is written under
 * `.panda-se/tmp/`, its size and Adler-32 are checked on the server (`xrdfs
 * query checksum`), then it is moved into place. Between two XRootD elements a
 * copy is third-party (`xrdcp --tpc only`): the bytes go server to server.
 */
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { z } from "zod";
import { createChecksummer, createFileDigester, type FileDigest } from "./checksum.js";
import {
  type ExpectedFile,
  type PutResult,
  requireChecksum,
  type StorageElement,
  StorageError,
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
import { listPrefixDirectory, RESERVED_TOP_DIRECTORY } from "./storage-path.js";
import { isXrootdNotFound, runXrd, streamFromXrdcp, XrootdCommandError } from "./xrootd-commands.js";
import { xrootdLocation, xrootdPathSegments, xrootdUrl } from "./xrootd-endpoint.js";

export interface XrootdStorageElementOptions {
  /** `root://host:port/`. */
  endpoint: string;
  /** The directory on the server this element keeps its files under. */
  basePath: string;
  /** How long a metadata request (stat, checksum, move, listing) may take. */
  requestTimeoutMs?: number;
}

/** Checksums remembered beside a file: the server computes Adler-32 itself, not SHA-256. */
const SidecarSchema = z.object({ sizeBytes: z.number(), checksum: z.string(), sha256: z.string() });

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** How the server refuses a move onto a path another kind of entry holds. */
const PATH_TAKEN = /not a directory|is a directory|file exists|directory not empty/i;

export class XrootdStorageElement implements StorageElement {
  readonly hostPort: string;
  readonly basePath: string;
  private readonly requestTimeoutMs: number;
  /** Puts of one path in this process, one at a time: XRootD's move replaces, so publish is checked then done. */
  private readonly publishing = new Map<string, Promise<unknown>>();

  constructor(options: XrootdStorageElementOptions) {
    const location = xrootdLocation(options.endpoint, options.basePath);
    this.hostPort = location.hostPort;
    this.basePath = location.basePath;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** The root:// URL of a stored file, as a client outside the server (a pilot) reaches it. */
  directUrl(path: string): string {
    return xrootdUrl(this.hostPort, this.absolute(xrootdPathSegments(path)));
  }

  /** The root:// URL of this element's directory. */
  directBaseUrl(): string {
    return xrootdUrl(this.hostPort, this.basePath === "" ? "/" : this.basePath);
  }

  async put(path: string, data: Readable | Uint8Array, expected: ExpectedFile): Promise<PutResult> {
    const segments = this.checkPut(path, expected);
    const existing = await this.stat(path);
    if (existing !== null) return acceptExisting(path, existing, expected, data);
    const temp = this.tempPath();
    try {
      const written = await this.writeVerified(temp, path, data, expected);
      return await this.publish(temp, segments, path, expected, written);
    } finally {
      await this.removeQuietly(temp);
    }
  }

  /**
   * Copies a file from another XRootD element server to server. Null when
   * the source is not XRootD (the caller streams instead). The source is
   * checked against `expected` first, the copy on this server after.
   */
  async copyFrom(source: StorageElement, path: string, expected: ExpectedFile): Promise<PutResult | null> {
    if (!(source instanceof XrootdStorageElement)) return null;
    const segments = this.checkPut(path, expected);
    const existing = await this.stat(path);
    if (existing !== null) return acceptExisting(path, existing, expected, new Uint8Array());
    const original = await source.stat(path);
    if (original === null) throw notFound(path);
    if (!storedFileMatches(original, expected)) throw mismatch(path, original, expected, "the source");
    const temp = this.tempPath();
    try {
      await runXrd("xrdcp", ["--tpc", "only", "-s", source.directUrl(path), xrootdUrl(this.hostPort, temp)]);
      await this.verifyOnServer(temp, path, original);
      return await this.publish(temp, segments, path, expected, original);
    } finally {
      await this.removeQuietly(temp);
    }
  }

  async get(path: string): Promise<Readable> {
    const info = await this.serverStat(this.absolute(xrootdPathSegments(path)));
    if (info === null || info.isDirectory) throw notFound(path);
    return streamFromXrdcp(this.directUrl(path));
  }

  async stat(path: string): Promise<StoredFile | null> {
    const segments = xrootdPathSegments(path);
    const absolute = this.absolute(segments);
    const info = await this.serverStat(absolute);
    if (info === null || info.isDirectory) return null;
    const checksum = await this.serverChecksum(absolute);
    if (checksum === null) return null;
    const sidecar = await this.readSidecar(segments);
    if (sidecar?.sizeBytes === info.sizeBytes && sidecar.checksum === checksum) return sidecar;
    // Put there by other means, or rewritten: SHA-256 is read once from the bytes and remembered.
    const sha256 = createChecksummer("sha256");
    for await (const chunk of streamFromXrdcp(this.directUrl(path))) sha256.update(chunk as Buffer);
    const computed = { sizeBytes: info.sizeBytes, checksum, sha256: sha256.digest() };
    await this.writeSidecar(segments, computed);
    return computed;
  }

  async list(prefix: string): Promise<string[]> {
    const directory = listPrefixDirectory(prefix);
    const found: string[] = [];
    let listing: string;
    try {
      listing = (await this.xrdfs(["ls", "-l", "-R", this.absolute(directory)])).stdout;
    } catch (err) {
      if (isXrootdNotFound(err)) return [];
      throw err;
    }
    const root = `${this.basePath}/`;
    for (const line of listing.split("\n")) {
      // `-rw-r--r-- owner group size date time /abs/path`; directories start with d.
      const match = /^(\S+)\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+(\/.*)$/.exec(line);
      if (match === null || match[1]!.startsWith("d") || !match[2]!.startsWith(root)) continue;
      const relative = match[2]!.slice(root.length);
      if (relative.split("/")[0] === RESERVED_TOP_DIRECTORY) continue;
      if (relative.startsWith(prefix)) found.push(relative);
    }
    return found.sort();
  }

  async delete(path: string): Promise<boolean> {
    const segments = xrootdPathSegments(path);
    const info = await this.serverStat(this.absolute(segments));
    if (info === null || info.isDirectory) return false;
    try {
      await this.xrdfs(["rm", this.absolute(segments)]);
    } catch (err) {
      if (isXrootdNotFound(err)) return false;
      throw err;
    }
    await this.removeQuietly(this.sidecarPath(segments));
    return true;
  }

  async sweepTemp(maxAgeMs: number, nowMs = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = (await this.xrdfs(["ls", this.tempDir()])).stdout.split("\n").filter((l) => l.trim() !== "");
    } catch (err) {
      if (isXrootdNotFound(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const entry of names) {
      const name = entry.slice(entry.lastIndexOf("/") + 1);
      const createdMs = Number(/^(\d+)-/.exec(name)?.[1] ?? Number.NaN);
      if (!(nowMs - createdMs > maxAgeMs)) continue;
      await this.xrdfs(["rm", `${this.tempDir()}/${name}`]).then(
        () => (removed += 1),
        () => undefined,
      );
    }
    return removed;
  }

  private checkPut(path: string, expected: ExpectedFile): string[] {
    const segments = xrootdPathSegments(path);
    requireChecksum(path, expected.checksum);
    requireSize(path, expected);
    return segments;
  }

  /** Streams data to a temp file on the server, hashing as it goes; refuses anything not as expected. */
  private async writeVerified(
    temp: string,
    path: string,
    data: Readable | Uint8Array,
    expected: ExpectedFile,
  ): Promise<FileDigest> {
    const digester = createFileDigester();
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunksOf(data)) {
        digester.update(chunk);
        // Stop at once rather than fill the server with a file that is already wrong.
        if (digester.sizeBytes() > expected.sizeBytes)
          throw sizeMismatch(path, expected.sizeBytes, digester.sizeBytes(), "at least ");
        yield chunk;
      }
    }
    await runXrd("xrdcp", ["-s", "-", xrootdUrl(this.hostPort, temp)], { stdin: counted() });
    const actual = digester.digest();
    if (actual.sizeBytes !== expected.sizeBytes)
      throw sizeMismatch(path, expected.sizeBytes, actual.sizeBytes, "");
    if (!storedFileMatches(actual, expected)) throw mismatch(path, actual, expected, "the data sent");
    await this.verifyOnServer(temp, path, actual);
    return actual;
  }

  /** What landed on the server is what was meant: its size and the server's own Adler-32. */
  private async verifyOnServer(temp: string, path: string, meant: StoredFile): Promise<void> {
    const info = await this.serverStat(temp);
    const checksum = await this.serverChecksum(temp);
    if (info?.sizeBytes !== meant.sizeBytes || checksum !== meant.checksum) {
      throw new StorageError(
        "CHECKSUM_MISMATCH",
        path,
        `${path}: the server holds ${info?.sizeBytes ?? "no"} bytes with ${checksum ?? "no checksum"}, expected ${meant.sizeBytes} bytes with ${meant.checksum}`,
        { expected: meant.checksum, actual: checksum, actualBytes: info?.sizeBytes ?? null },
      );
    }
  }

  /** Moves a verified temp file into place, unless a file is already there (then it must be this one). */
  private async publish(
    temp: string,
    segments: string[],
    path: string,
    expected: ExpectedFile,
    written: StoredFile,
  ): Promise<PutResult> {
    const key = segments.join("/");
    const before = this.publishing.get(key) ?? Promise.resolve();
    const turn = before.then(async (): Promise<PutResult> => {
      const absent = (await this.serverStat(this.absolute(segments))) === null;
      const existing = absent ? null : await this.stat(path);
      if (!absent) {
        if (existing !== null && storedFileMatches(existing, expected))
          return { ...existing, created: false };
        throw existsError(path, existing, expected);
      }
      try {
        await this.xrdfs(["mv", temp, this.absolute(segments)]);
      } catch (err) {
        // A directory, or a file where a parent directory should be: the path is taken, for good.
        if (!(err instanceof XrootdCommandError) || !PATH_TAKEN.test(err.stderr)) throw err;
        throw existsError(path, null, expected);
      }
      await this.writeSidecar(segments, written);
      return {
        sizeBytes: written.sizeBytes,
        checksum: written.checksum,
        sha256: written.sha256,
        created: true,
      };
    });
    const settled = turn.catch(() => undefined);
    this.publishing.set(key, settled);
    void settled.then(() => {
      if (this.publishing.get(key) === settled) this.publishing.delete(key);
    });
    return turn;
  }

  private absolute(segments: readonly string[]): string {
    return segments.length === 0 ? this.basePath || "/" : `${this.basePath}/${segments.join("/")}`;
  }

  /** Named `<ms since epoch>-<uuid>`: its age is read from its name, whatever clock the server's listing keeps. */
  private tempPath(): string {
    return `${this.tempDir()}/${Date.now()}-${randomUUID()}`;
  }

  private tempDir(): string {
    return `${this.basePath}/${RESERVED_TOP_DIRECTORY}/tmp`;
  }

  private sidecarPath(segments: readonly string[]): string {
    return `${this.basePath}/${RESERVED_TOP_DIRECTORY}/meta/${segments.join("/")}.json`;
  }

  private xrdfs(args: string[]) {
    return runXrd("xrdfs", [this.hostPort, ...args], { timeoutMs: this.requestTimeoutMs });
  }

  /** Size and kind of a path on the server; null when there is none. */
  private async serverStat(absolute: string): Promise<{ sizeBytes: number; isDirectory: boolean } | null> {
    let stdout: string;
    try {
      stdout = (await this.xrdfs(["stat", absolute])).stdout;
    } catch (err) {
      if (isXrootdNotFound(err)) return null;
      throw err;
    }
    const size = /^Size:\s+(\d+)/m.exec(stdout);
    const flags = /^Flags:\s+\d+\s+\(([^)]*)\)/m.exec(stdout);
    if (size === null) throw new Error(`xrdfs stat ${absolute}: no size in ${JSON.stringify(stdout)}`);
    return { sizeBytes: Number(size[1]), isDirectory: (flags?.[1] ?? "").split("|").includes("IsDir") };
  }

  /** The server's Adler-32 of a file (`adler32:<hex>`); null when there is no such file. */
  private async serverChecksum(absolute: string): Promise<string | null> {
    let stdout: string;
    try {
      stdout = (await this.xrdfs(["query", "checksum", absolute])).stdout;
    } catch (err) {
      if (isXrootdNotFound(err)) return null;
      throw err;
    }
    const match = /^adler32\s+([0-9a-fA-F]{1,8})\b/m.exec(stdout.trim());
    if (match === null) {
      throw new Error(
        `xrdfs query checksum ${absolute}: no adler32 in ${JSON.stringify(stdout)} (is the server configured with xrootd.chksum adler32?)`,
      );
    }
    return `adler32:${match[1]!.toLowerCase().padStart(8, "0")}`;
  }

  private async readSidecar(segments: readonly string[]): Promise<StoredFile | null> {
    try {
      const { stdout } = await runXrd(
        "xrdcp",
        ["-s", xrootdUrl(this.hostPort, this.sidecarPath(segments)), "-"],
        {
          timeoutMs: this.requestTimeoutMs,
        },
      );
      const parsed = SidecarSchema.safeParse(JSON.parse(stdout));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** The sidecar is a cache that stat rebuilds, so failing to write it must not fail the caller. */
  private async writeSidecar(segments: readonly string[], file: StoredFile): Promise<void> {
    const temp = this.tempPath();
    const body = Buffer.from(
      JSON.stringify({ sizeBytes: file.sizeBytes, checksum: file.checksum, sha256: file.sha256 }),
    );
    try {
      await runXrd("xrdcp", ["-s", "-", xrootdUrl(this.hostPort, temp)], {
        stdin: chunksOf(body),
        timeoutMs: this.requestTimeoutMs,
      });
      await this.xrdfs(["mv", temp, this.sidecarPath(segments)]);
    } catch {
      await this.removeQuietly(temp);
    }
  }

  private async removeQuietly(absolute: string): Promise<void> {
    await this.xrdfs(["rm", absolute]).catch(() => undefined);
  }
}

async function acceptExisting(
  path: string,
  existing: StoredFile,
  expected: ExpectedFile,
  data: Readable | Uint8Array,
): Promise<PutResult> {
  if (!storedFileMatches(existing, expected)) throw existsError(path, existing, expected);
  await drainInput(data);
  return { ...existing, created: false };
}

/** A stored file that is not the one expected, by size first (the plainer story), else by checksum. */
function mismatch(path: string, actual: StoredFile, expected: ExpectedFile, where: string): StorageError {
  if (actual.sizeBytes !== expected.sizeBytes)
    return sizeMismatch(path, expected.sizeBytes, actual.sizeBytes, "");
  return checksumMismatch(path, actual, expected, where);
}
