/**
 * The server's sandboxes: their archives on a storage element (any
 * `StorageElement`: a local directory by default, a remote endpoint later)
 * under their sha256, and their catalog in the global index, which every
 * server node shares: who uploaded each, which tasks use it, when it was
 * last used. Archives are immutable and deduplicated by content: putting
 * bytes under a hash they do not have is refused by the storage element.
 */
import { createHash } from "node:crypto";
import { type Readable, Transform } from "node:stream";
import { z } from "zod";
import type { QueueIndex } from "../store/queue-index.js";
import { isStorageError, type StorageElement, StorageError } from "../transfer/storage-element.js";
import { type SandboxRef, sandboxPath } from "./sandbox-ref.js";

/** The sandbox limits of a grid, from the server's configuration. */
export const sandboxConfigSchema = z.object({
  /** The largest archive (compressed) the server takes. */
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** What a pilot unpacks at most: the sum of the files' sizes. */
  maxUnpackedBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024 * 1024),
  /** What a pilot unpacks at most: files, directories and links. */
  maxEntries: z.number().int().positive().default(100_000),
  /** How long a sandbox is kept after it was last used (uploaded, submitted with, fetched by a pilot). */
  retentionMs: z
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600 * 1000),
  /** How often each node looks for sandboxes past their retention. */
  sweepIntervalMs: z
    .number()
    .int()
    .positive()
    .default(10 * 60 * 1000),
});
export type SandboxConfig = z.output<typeof sandboxConfigSchema>;

/** The catalog's global index names: one list by last use, and per sandbox its owners and tasks. */
const CATALOG = "sandboxes";
const ownersOf = (sha256: string) => `sandbox-owners:${sha256}`;
const tasksOf = (sha256: string) => `sandbox-tasks:${sha256}`;
/** How many tasks and owners a listing names per sandbox. */
const MAX_LISTED_MEMBERS = 100;

const recordSchema = z.object({ sizeBytes: z.number().int().positive(), createdMs: z.number() });

export interface SandboxListing {
  sha256: string;
  sizeBytes: number;
  createdMs: number;
  lastUsedMs: number;
  owners: string[];
  tasks: string[];
}

/** Why a sandbox request is refused: `code` is answered to the client. */
export class SandboxError extends Error {
  override readonly name = "SandboxError";
  constructor(
    readonly code: "SANDBOX_NOT_FOUND" | "TOO_LARGE",
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class SandboxStore {
  constructor(
    /** Where the archives are, under `sandboxPath(sha256)`; a job spec names them there when pilots reach it. */
    readonly element: StorageElement,
    private readonly index: QueueIndex,
    readonly config: SandboxConfig,
  ) {}

  /** The sandbox's record when it exists and `user` may use it (an owner; `null`: anyone, for operators and pilots). */
  async find(sha256: string, user: string | null): Promise<SandboxListing | null> {
    const [record] = await this.index.readRecords(CATALOG, [sha256]);
    if (record === null || record === undefined) return null;
    if (user !== null && (await this.index.rank(ownersOf(sha256), user)) === null) return null;
    if ((await this.element.stat(sandboxPath(sha256))) === null) return null;
    return this.listing(sha256, record);
  }

  /**
   * Stores an archive under its hash for `user`, who becomes one of its
   * owners. The bytes are checked against the hash and size by the storage
   * element; identical bytes already there are not written again.
   */
  async put(ref: SandboxRef, body: Readable, user: string, nowMs: number): Promise<{ created: boolean }> {
    if (ref.sizeBytes > this.config.maxBytes) {
      throw new SandboxError(
        "TOO_LARGE",
        `${ref.sizeBytes} bytes exceeds the sandbox limit of ${this.config.maxBytes}`,
        {
          sizeBytes: ref.sizeBytes,
          maxBytes: this.config.maxBytes,
        },
      );
    }
    const path = sandboxPath(ref.sha256);
    const checked = checkedBody(body, ref, path);
    const stored = await this.element
      .put(path, checked.stream, { sizeBytes: ref.sizeBytes, checksum: `sha256:${ref.sha256}` })
      .catch((err: unknown) => {
        // However the element noticed (a mismatch, or different bytes already there), it is one refusal.
        if (isStorageError(err) && MISMATCHES.has(err.code)) throw mismatch(ref, path, err.message);
        throw err;
      });
    // A storage element holding these bytes already may not read the body: it is checked all the same,
    // since an upload of identical bytes is what makes another user an owner.
    await checked.verified();
    const [existing] = await this.index.readRecords(CATALOG, [ref.sha256]);
    const createdMs = existing ? recordSchema.parse(JSON.parse(existing)).createdMs : nowMs;
    const record = JSON.stringify({ sizeBytes: ref.sizeBytes, createdMs });
    await this.index.putRecord(CATALOG, ref.sha256, nowMs, record);
    await this.index.add(ownersOf(ref.sha256), user, nowMs);
    return { created: stored.created };
  }

  /**
   * Records a use of a sandbox still in the catalog (a job sent with it);
   * one the sweep already removed stays removed.
   */
  async markUsed(sha256: string, nowMs: number): Promise<void> {
    if ((await this.index.rank(CATALOG, sha256)) === null) return;
    await this.index.add(CATALOG, sha256, nowMs);
  }

  /** The archive's bytes; a fetch counts as a use (a running task keeps its sandbox). */
  async open(sha256: string, nowMs: number): Promise<Readable> {
    if ((await this.find(sha256, null)) === null) throw notFound(sha256);
    await this.index.add(CATALOG, sha256, nowMs);
    return this.element.get(sandboxPath(sha256));
  }

  /**
   * Records that `taskId` of `user` uses the sandbox, which must be there and
   * the user's. The use is written before the archive is looked at, so a
   * sweep that did not yet delete it sees it used and leaves it alone.
   */
  async useForTask(ref: SandboxRef, user: string, taskId: string, nowMs: number): Promise<void> {
    if ((await this.index.rank(ownersOf(ref.sha256), user)) === null) throw notFound(ref.sha256);
    await this.index.add(CATALOG, ref.sha256, nowMs);
    await this.index.add(tasksOf(ref.sha256), taskId, nowMs);
    // Ownership was checked above: the entry and the archive are what is left to look at.
    const found = await this.find(ref.sha256, null);
    if (found === null || found.sizeBytes !== ref.sizeBytes) throw notFound(ref.sha256);
  }

  /** Sandboxes by last use, oldest first: a user's own (`owner`), or every one (`null`). */
  async list(owner: string | null, limit: number): Promise<SandboxListing[]> {
    const listed: SandboxListing[] = [];
    const pageSize = 200;
    for (let offset = 0; listed.length < limit; offset += pageSize) {
      const page = await this.index.range(CATALOG, offset, pageSize);
      if (page.length === 0) break;
      const records = await this.index.readRecords(
        CATALOG,
        page.map((e) => e.member),
      );
      for (const [i, entry] of page.entries()) {
        const record = records[i];
        if (record === null || record === undefined) continue;
        const listing = await this.listing(entry.member, record, entry.score);
        if (owner === null || listing.owners.includes(owner)) listed.push(listing);
        if (listed.length >= limit) break;
      }
    }
    return listed;
  }

  /**
   * Deletes sandboxes unused for the retention time. Safe on several nodes at
   * once: removing a catalog entry is atomic and only one sweeper wins it;
   * the winner deletes the archive and the entry's owners and tasks.
   */
  async sweep(nowMs: number): Promise<string[]> {
    const cutoffMs = nowMs - this.config.retentionMs;
    const swept: string[] = [];
    for (;;) {
      const oldest = await this.index.range(CATALOG, 0, 100);
      const expired = oldest.filter((e) => e.score < cutoffMs);
      if (expired.length === 0) break;
      for (const { member } of expired) {
        // Only while still unused since the cutoff: a task that took it after our read keeps it.
        if (!(await this.index.removeIfScoreBelow(CATALOG, member, cutoffMs))) continue;
        await this.element.delete(sandboxPath(member));
        for (const queue of [ownersOf(member), tasksOf(member)]) {
          for (const entry of await this.index.range(queue, 0, 10_000))
            await this.index.remove(queue, entry.member);
        }
        swept.push(member);
      }
      if (expired.length < oldest.length) break;
    }
    return swept;
  }

  private async listing(sha256: string, recordText: string, lastUsed?: number): Promise<SandboxListing> {
    const record = recordSchema.parse(JSON.parse(recordText));
    const [owners, tasks, rank] = await Promise.all([
      this.index.range(ownersOf(sha256), 0, MAX_LISTED_MEMBERS),
      this.index.range(tasksOf(sha256), 0, MAX_LISTED_MEMBERS),
      lastUsed === undefined ? this.lastUsedMs(sha256) : Promise.resolve(lastUsed),
    ]);
    return {
      sha256,
      sizeBytes: record.sizeBytes,
      createdMs: record.createdMs,
      lastUsedMs: rank,
      owners: owners.map((e) => e.member),
      tasks: tasks.map((e) => e.member),
    };
  }

  private async lastUsedMs(sha256: string): Promise<number> {
    // The catalog holds no score read; a single-member range by rank finds it.
    const rank = await this.index.rank(CATALOG, sha256);
    if (rank === null) return 0;
    const [entry] = await this.index.range(CATALOG, rank, 1);
    return entry?.score ?? 0;
  }
}

/**
 * The body on its way to the storage element, hashed as it goes; `verified`
 * reads what the element left unread and throws unless the bytes are the
 * sandbox's.
 */
function checkedBody(body: Readable, ref: SandboxRef, path: string) {
  const digest = createHash("sha256");
  let sizeBytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digest.update(chunk);
      sizeBytes += chunk.length;
      callback(null, chunk);
    },
  });
  body.on("error", (err) => stream.destroy(err));
  body.pipe(stream);
  return {
    stream,
    async verified(): Promise<void> {
      for await (const _ of stream) {
        // Drained only to hash it.
      }
      const actual = digest.digest("hex");
      if (sizeBytes !== ref.sizeBytes || actual !== ref.sha256) {
        throw mismatch(ref, path, `the body has ${sizeBytes} bytes of sha256 ${actual}`);
      }
    },
  };
}

const MISMATCHES: ReadonlySet<string> = new Set(["EXISTS", "CHECKSUM_MISMATCH", "SIZE_MISMATCH"]);

function mismatch(ref: SandboxRef, path: string, why: string): StorageError {
  return new StorageError(
    "CHECKSUM_MISMATCH",
    path,
    `refused: not the bytes of sandbox ${ref.sha256} (${ref.sizeBytes} bytes), and a sandbox never changes: ${why}`,
    { sha256: ref.sha256, sizeBytes: ref.sizeBytes },
  );
}

function notFound(sha256: string): SandboxError {
  return new SandboxError(
    "SANDBOX_NOT_FOUND",
    `sandbox ${sha256} is not on the server or not yours (upload it: panda submit --sandbox does)`,
    { sha256 },
  );
}
