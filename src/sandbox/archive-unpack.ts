/**
 * Unpacking a sandbox archive (tar.gz) into a job directory, refusing hostile
 * ones. Two passes over the verified archive on disk: the first reads every
 * header and checks them all (`EntryPlanner`) without writing anything; only
 * an archive that passed whole is read again and written. So a refused
 * sandbox leaves nothing behind, not even the harmless part before the bad
 * entry, and no check depends on what earlier writes did to the disk.
 * Writing is defensive too: files are created exclusively and never through
 * a symlink, so the disk cannot disagree with the plan.
 */
import { constants, createReadStream } from "node:fs";
import { chmod, link, mkdir, open, symlink } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { type Extract as TarExtract, extract as tarExtract } from "tar-stream";

/** One entry as the extractor yields it: its header, its body a stream. */
type TarEntry = TarExtract extends AsyncIterable<infer E> ? E : never;

import { EntryPlanner, type PlannedEntry, SandboxRefused, type UnpackLimits } from "./archive-rules.js";

/** Tar's own bytes around the files: a 512-byte header (two with a long name or pax) per entry, padding, the end. */
const TAR_OVERHEAD_PER_ENTRY_BYTES = 3 * 512;
const TAR_TRAILER_BYTES = 64 * 1024;

export interface UnpackResult {
  entries: number;
  unpackedBytes: number;
}

/** Decompressed bytes beyond what the limits allow: a gzip bomb stops here, not at the disk. */
function decompressedCap(limits: UnpackLimits): Transform {
  const maxBytes =
    limits.maxUnpackedBytes + (limits.maxEntries + 1) * TAR_OVERHEAD_PER_ENTRY_BYTES + TAR_TRAILER_BYTES;
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) {
        callback(
          new SandboxRefused(
            `decompresses to more than ${maxBytes} bytes (limit ${limits.maxUnpackedBytes} unpacked)`,
          ),
        );
      } else callback(null, chunk);
    },
  });
}

/** Runs `onEntry` for each entry of the archive in order, its body drained unless `onEntry` reads it. */
async function eachEntry(
  archivePath: string,
  limits: UnpackLimits,
  onEntry: (entry: TarEntry) => Promise<void>,
): Promise<void> {
  const extract = tarExtract();
  const reading = pipeline(createReadStream(archivePath), createGunzip(), decompressedCap(limits), extract);
  // The pipeline's own failure (bad gzip, too big) surfaces through the iterator or here.
  reading.catch(() => undefined);
  try {
    for await (const entry of extract) {
      await onEntry(entry);
      entry.resume();
    }
    await reading;
  } catch (err) {
    extract.destroy();
    if (err instanceof SandboxRefused) throw err;
    throw new SandboxRefused(`not a readable tar.gz: ${(err as Error).message}`);
  }
}

/** Checks every entry of the archive; throws `SandboxRefused` naming the first bad one. */
export async function checkArchive(archivePath: string, limits: UnpackLimits): Promise<PlannedEntry[]> {
  const planner = new EntryPlanner(limits);
  await eachEntry(archivePath, limits, async (entry) => {
    planner.add(entry.header);
  });
  return planner.entries;
}

/**
 * Unpacks the archive into `dir` (which must exist and hold nothing the archive
 * names) after checking all of it; throws `SandboxRefused` before writing
 * anything when any entry is refused.
 */
export async function unpackArchive(
  archivePath: string,
  dir: string,
  limits: UnpackLimits,
): Promise<UnpackResult> {
  const plan = await checkArchive(archivePath, limits);
  // The second read must see the archive the first one checked: the same entries, in the same order.
  const replay = new EntryPlanner(limits);
  let index = 0;
  let unpackedBytes = 0;
  await eachEntry(archivePath, limits, async (entry) => {
    const planned = replay.add(entry.header);
    if (planned === null) return;
    const expected = plan[index++];
    if (expected === undefined || expected.path !== planned.path || expected.kind !== planned.kind) {
      throw new SandboxRefused("the archive changed between its check and its unpacking");
    }
    if (planned.kind === "file")
      unpackedBytes += await writeFile(dir, planned, entry as AsyncIterable<Buffer>);
    else await make(dir, planned);
  });
  return { entries: plan.length, unpackedBytes };
}

function pathIn(dir: string, relative: string): string {
  return join(dir, ...relative.split("/"));
}

async function makeParent(dir: string, relative: string): Promise<void> {
  const slash = relative.lastIndexOf("/");
  if (slash > 0) await mkdir(pathIn(dir, relative.slice(0, slash)), { recursive: true, mode: 0o755 });
}

async function make(dir: string, entry: Exclude<PlannedEntry, { kind: "file" }>): Promise<void> {
  const target = pathIn(dir, entry.path);
  if (entry.kind === "directory") {
    await mkdir(target, { recursive: true, mode: 0o755 });
    return;
  }
  await makeParent(dir, entry.path);
  if (entry.kind === "symlink") await symlink(entry.target, target);
  else await link(pathIn(dir, entry.target), target);
}

/** Writes one regular file, created exclusively and never through a symlink; its size must be its header's. */
async function writeFile(
  dir: string,
  entry: Extract<PlannedEntry, { kind: "file" }>,
  body: AsyncIterable<Buffer>,
): Promise<number> {
  await makeParent(dir, entry.path);
  const mode = entry.executable ? 0o755 : 0o644;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(pathIn(dir, entry.path), flags, mode);
  let written = 0;
  try {
    for await (const chunk of body) {
      written += chunk.length;
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  if (written !== entry.sizeBytes) {
    throw new SandboxRefused(
      `entry ${JSON.stringify(entry.path)} held ${written} bytes, its header said ${entry.sizeBytes}`,
    );
  }
  // The umask may have narrowed the mode given at creation.
  await chmod(pathIn(dir, entry.path), mode);
  return written;
}
