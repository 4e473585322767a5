/**
 * Packing a directory into a sandbox archive (tar.gz) for `panda submit
 * --sandbox`. The archive is reproducible: entries sorted, times, owners and
 * modes normalized, so the same files make the same bytes and the same
 * sha256, and a second submit of unchanged code uploads nothing.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, readdir, readlink, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { type Pack, pack as tarPack } from "tar-stream";
import { matchesAnyGlob } from "./glob.js";

export interface PackOptions {
  /** Globs of paths left out (`*.o`, `build/**`, `.git`); a glob without `/` matches a name at any depth. */
  exclude?: readonly string[];
  /** The archive's size limit: packing stops with `SandboxTooLarge` once it is passed. */
  maxBytes: number;
}

export interface PackedSandbox {
  archivePath: string;
  sha256: string;
  sizeBytes: number;
  entries: number;
}

/** A directory that cannot be a sandbox: what is wrong, naming the path. */
export class SandboxPackError extends Error {
  override readonly name = "SandboxPackError";
}

const EPOCH = new Date(0);

/** The files of `dir`, relative and sorted, excluded ones left out (a left-out directory with all below it). */
async function listEntries(dir: string, exclude: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const names = (await readdir(relative === "" ? dir : join(dir, relative))).sort();
    for (const name of names) {
      const path = relative === "" ? name : `${relative}/${name}`;
      if (matchesAnyGlob(path, exclude)) continue;
      found.push(path);
      const info = await lstat(join(dir, path));
      if (info.isDirectory()) await walk(path);
    }
  };
  await walk("");
  return found;
}

/** Counts and hashes the compressed bytes on their way to disk, stopping past the limit. */
function measure(maxBytes: number, digest: ReturnType<typeof createHash>, counted: { bytes: number }) {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counted.bytes += chunk.length;
      if (counted.bytes > maxBytes) {
        callback(
          new SandboxPackError(
            `the sandbox exceeds the limit of ${maxBytes} bytes compressed (use --exclude to leave files out)`,
          ),
        );
        return;
      }
      digest.update(chunk);
      callback(null, chunk);
    },
  });
}

/** Adds one path's entry; refuses what a pilot would refuse (a symlink out of the directory, a device). */
async function addEntry(pack: Pack, dir: string, path: string): Promise<void> {
  const full = join(dir, path);
  const info = await lstat(full);
  const common = { name: path, mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "" };
  if (info.isDirectory()) {
    pack.entry({ ...common, type: "directory", mode: 0o755 });
    return;
  }
  if (info.isSymbolicLink()) {
    const target = await readlink(full);
    const resolved = posix.normalize(posix.join(posix.dirname(path), target));
    if (posix.isAbsolute(target) || resolved === ".." || resolved.startsWith("../")) {
      throw new SandboxPackError(
        `symlink ${path} points outside the sandbox directory (to ${target}): a pilot would refuse it`,
      );
    }
    pack.entry({ ...common, type: "symlink", linkname: target, mode: 0o777 });
    return;
  }
  if (!info.isFile()) throw new SandboxPackError(`${path} is not a file, directory or symlink`);
  const mode = (info.mode & 0o111) !== 0 ? 0o755 : 0o644;
  const entry = pack.entry({ ...common, type: "file", size: info.size, mode });
  await pipeline(createReadStream(full), entry);
}

/**
 * Packs `dir` into `archivePath` and answers its sha256 and size. On any
 * failure (a limit, a file that vanished) the partial archive is removed.
 */
export async function packDirectory(
  dir: string,
  archivePath: string,
  options: PackOptions,
): Promise<PackedSandbox> {
  const rootInfo = await lstat(dir).catch(() => null);
  if (!rootInfo?.isDirectory()) throw new SandboxPackError(`${dir} is not a directory`);
  const paths = await listEntries(dir, options.exclude ?? []);
  if (paths.length === 0) throw new SandboxPackError(`${dir} holds nothing to pack`);
  const pack = tarPack();
  const digest = createHash("sha256");
  const counted = { bytes: 0 };
  const writing = pipeline(
    pack,
    createGzip({ level: 9 }),
    measure(options.maxBytes, digest, counted),
    createWriteStream(archivePath),
  );
  try {
    const adding = (async () => {
      for (const path of paths) await addEntry(pack, dir, path);
      pack.finalize();
    })();
    // Either side may fail first: a limit stops the writing, a bad entry the adding.
    await Promise.all([
      adding.catch((err: unknown) => {
        pack.destroy(err as Error);
        throw err;
      }),
      writing,
    ]);
  } catch (err) {
    await rm(archivePath, { force: true });
    throw err;
  }
  return { archivePath, sha256: digest.digest("hex"), sizeBytes: counted.bytes, entries: paths.length };
}
