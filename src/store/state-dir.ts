/**
 * The files of the durable store in one directory: a lock naming the process
 * that has it open, the snapshot (one frame), and the log of the operations
 * since that snapshot (`log-<generation>`, frames). A snapshot of generation
 * g is followed by `log-g`; compaction writes snapshot g+1 atomically (temp
 * file, fsync, rename, fsync of the directory) before `log-(g+1)` starts, so
 * a crash at any point leaves one snapshot and the log that goes with it.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.js";
import { frameOf, readFrames } from "./frames.js";

const LOCK_FILE = "lock";
const SNAPSHOT_FILE = "snapshot";
const SNAPSHOT_TEMP_FILE = "snapshot.tmp";
const logFile = (generation: number) => `log-${generation}`;
const LOG_FILE_PATTERN = /^log-(\d+)$/;

/** Writes all of `bytes` (a write may take only part of them). */
function writeAll(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

/** Makes a rename or a new file in `dir` itself durable, not only the file's bytes. */
function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class StateDirectory {
  private logFd: number | null = null;
  private locked = false;
  /** Bytes in the current log, whole frames only. */
  logBytes = 0;

  constructor(readonly dir: string) {}

  /** Claims the directory for this process; a lock left by a process that is gone is taken over. */
  lock(): void {
    mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
      if (Number.isInteger(pid) && (pid === process.pid || processAlive(pid)))
        throw new StoreError(
          "UNAVAILABLE",
          `${this.dir} is in use by process ${pid} (another panda up or server on the same data directory?); if that process is not panda, delete ${path}`,
        );
      rmSync(path, { force: true });
    }
    throw new StoreError("UNAVAILABLE", `could not lock ${this.dir}`);
  }

  unlock(): void {
    if (!this.locked) return;
    rmSync(join(this.dir, LOCK_FILE), { force: true });
    this.locked = false;
  }

  /** The snapshot's payload, or null when there is none yet. A damaged one is an error, never an empty state. */
  readSnapshot(): Buffer | null {
    const path = join(this.dir, SNAPSHOT_FILE);
    if (!existsSync(path)) return null;
    const bytes = readFileSync(path);
    const { payloads, validBytes } = readFrames(bytes);
    if (payloads.length !== 1 || validBytes !== bytes.length)
      throw new StoreError(
        "UNAVAILABLE",
        `${path} is damaged (its checksum does not match): restore it from a backup, or move the state directory away to start empty`,
      );
    return payloads[0]!;
  }

  /**
   * Writes a snapshot beside the current one, fsynced; `installSnapshot`
   * then puts it in place. A failure here leaves the current one as it was.
   */
  writeSnapshotTemp(payload: Uint8Array): number {
    const frame = frameOf(payload);
    const fd = openSync(join(this.dir, SNAPSHOT_TEMP_FILE), "w", 0o600);
    try {
      writeAll(fd, frame);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return frame.length;
  }

  /** Replaces the snapshot with the one `writeSnapshotTemp` wrote, atomically: a crash leaves one or the other, whole. */
  installSnapshot(): void {
    renameSync(join(this.dir, SNAPSHOT_TEMP_FILE), join(this.dir, SNAPSHOT_FILE));
    fsyncDirectory(this.dir);
  }

  /**
   * The whole frames of `log-<generation>` (none when it does not exist). A
   * torn tail is cut off the log and kept beside it as `log-<g>.torn-<offset>`
   * for whoever wants to look; `tornBytes` says how much that was.
   */
  readLog(generation: number): { payloads: Buffer[]; tornBytes: number } {
    const path = join(this.dir, logFile(generation));
    if (!existsSync(path)) return { payloads: [], tornBytes: 0 };
    const bytes = readFileSync(path);
    const { payloads, validBytes } = readFrames(bytes);
    const tornBytes = bytes.length - validBytes;
    if (tornBytes > 0) {
      writeFileSync(`${path}.torn-${validBytes}`, bytes.subarray(validBytes), { mode: 0o600 });
      truncateSync(path, validBytes);
    }
    return { payloads, tornBytes };
  }

  /** Opens `log-<generation>` for appending (creating it) and removes every other generation's log. */
  openLog(generation: number): void {
    this.closeLog();
    const path = join(this.dir, logFile(generation));
    const created = !existsSync(path);
    this.logFd = openSync(path, "a", 0o600);
    this.logBytes = fstatSync(this.logFd).size;
    if (created) fsyncDirectory(this.dir);
    for (const name of readdirSync(this.dir)) {
      const match = LOG_FILE_PATTERN.exec(name);
      if ((match && Number(match[1]) !== generation) || name === SNAPSHOT_TEMP_FILE)
        rmSync(join(this.dir, name), { force: true });
    }
  }

  /** Appends whole frames; throws (having maybe written part of them) when the disk refuses. */
  append(frames: Buffer): void {
    if (this.logFd === null) throw new StoreError("UNAVAILABLE", "the state log is not open");
    writeAll(this.logFd, frames);
    this.logBytes += frames.length;
  }

  /** Makes what was appended survive a machine crash, not only a process crash. */
  sync(): void {
    if (this.logFd !== null) fdatasyncSync(this.logFd);
  }

  closeLog(): void {
    if (this.logFd === null) return;
    closeSync(this.logFd);
    this.logFd = null;
  }
}
