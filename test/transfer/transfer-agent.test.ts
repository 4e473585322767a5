import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DirectoryStorageElement,
  type ExpectedFile,
  type StorageElement,
  TransferAgent,
  type TransferAgentOptions,
  TransferError,
  type TransferFile,
  type TransferResult,
} from "../../src/transfer/index.js";
import { bytes, expectedOf, useTempDirs } from "./helpers.js";

const tempDir = useTempDirs();

/** Passes everything through to a real element, letting a test fail reads and watch writes. */
class ObservedElement implements StorageElement {
  readonly gets: string[] = [];
  /** Paths whose next read starts and then breaks, as a dropped connection would. */
  readonly breakNextRead = new Set<string>();
  activePuts = 0;
  maxActivePuts = 0;
  /** When set, puts wait for it, so a test can hold copies in flight. */
  gate: Promise<void> | undefined;
  private putWatchers: { count: number; resolve: () => void }[] = [];

  constructor(private readonly inner: StorageElement) {}

  async get(path: string): Promise<Readable> {
    this.gets.push(path);
    if (this.breakNextRead.delete(path)) {
      return new Readable({
        read() {
          this.push(Buffer.from("partial"));
          this.destroy(new Error(`connection reset reading ${path}`));
        },
      });
    }
    return this.inner.get(path);
  }

  async put(path: string, data: Readable | Uint8Array, expected: ExpectedFile) {
    this.activePuts += 1;
    this.maxActivePuts = Math.max(this.maxActivePuts, this.activePuts);
    for (const watcher of this.putWatchers.filter((w) => w.count === this.activePuts)) watcher.resolve();
    try {
      await this.gate;
      return await this.inner.put(path, data, expected);
    } finally {
      this.activePuts -= 1;
    }
  }

  /** Resolves when `count` puts are in flight at once. */
  whenActivePuts(count: number): Promise<void> {
    return new Promise((resolve) => this.putWatchers.push({ count, resolve }));
  }

  stat(path: string) {
    return this.inner.stat(path);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(path: string) {
    return this.inner.delete(path);
  }
}

interface Recorded {
  done: { lfn: string; skipped: boolean }[];
  failed: { lfn: string; error: Error; attempt: number; willRetry: boolean }[];
  completions: TransferResult[];
  delaysMs: number[];
}

async function setup(fileCount: number, config: TransferAgentOptions["config"] = {}) {
  const source = new ObservedElement(new DirectoryStorageElement(await tempDir()));
  const destRoot = await tempDir();
  const dest = new ObservedElement(new DirectoryStorageElement(destRoot));
  const files: TransferFile[] = [];
  for (let i = 0; i < fileCount; i++) {
    const data = bytes(20_000 + i * 100, i + 1);
    const lfn = `data.${String(i).padStart(3, "0")}.root`;
    await source.put(lfn, data, expectedOf(data));
    files.push({ lfn, ...expectedOf(data), sourceSite: "SOURCE" });
  }
  const recorded: Recorded = { done: [], failed: [], completions: [], delaysMs: [] };
  let resolveComplete: (result: TransferResult) => void = () => {};
  const completed = new Promise<TransferResult>((resolve) => {
    resolveComplete = resolve;
  });
  const agent = new TransferAgent({
    storage: new Map<string, StorageElement>([
      ["SOURCE", source],
      ["DEST", dest],
    ]),
    config,
    // Retries wait on nothing: the test drives time, not the wall clock.
    sleep: async (ms) => {
      recorded.delaysMs.push(ms);
    },
    events: {
      onFileDone: (_id, lfn, outcome) => recorded.done.push({ lfn, ...outcome }),
      onFileFailed: (_id, lfn, error, attempt, willRetry) =>
        recorded.failed.push({ lfn, error, attempt, willRetry }),
      onComplete: (_id, result) => {
        recorded.completions.push(result);
        resolveComplete(result);
      },
    },
  });
  return { agent, source, dest, destRoot, files, recorded, completed };
}

describe("TransferAgent", () => {
  it("copies 20 files four at a time, retrying the one whose first read breaks", async () => {
    const { agent, dest, destRoot, source, files, recorded, completed } = await setup(20, { concurrency: 4 });
    source.breakNextRead.add("data.007.root");
    expect(agent.submit({ subscriptionId: "sub-1", files, destSite: "DEST" })).toBe(true);

    expect(await completed).toEqual({ ok: true, failedFiles: [] });
    expect(dest.maxActivePuts).toBe(4);
    expect(recorded.done).toHaveLength(20);
    expect(recorded.done.every((d) => !d.skipped)).toBe(true);
    expect(recorded.failed).toHaveLength(1);
    expect(recorded.failed[0]).toMatchObject({ lfn: "data.007.root", attempt: 1, willRetry: true });
    expect(recorded.failed[0]?.error.message).toMatch(/connection reset/);
    expect(recorded.delaysMs).toEqual([1000]);
    for (const file of files) {
      expect(await dest.stat(file.lfn)).toMatchObject({ sizeBytes: file.sizeBytes, checksum: file.checksum });
    }
    expect(await dest.list("")).toHaveLength(20);
    // The broken attempt left no partial file behind.
    expect(await readdir(join(destRoot, ".panda-se", "tmp"))).toEqual([]);
    await agent.idle();
    expect(agent.stats()).toEqual({ subscriptions: 0, queuedFiles: 0, activeCopies: 0, waitingRetries: 0 });
  });

  it("skips files already at the destination with the right checksum and replaces wrong ones", async () => {
    const { agent, dest, source, files, recorded, completed } = await setup(6);
    for (const file of files.slice(0, 3)) await dest.put(file.lfn, await source.get(file.lfn), file);
    const impostor = Buffer.from("not the real data");
    await dest.put("data.005.root", impostor, expectedOf(impostor));
    source.gets.length = 0;

    agent.submit({ subscriptionId: "sub-2", files, destSite: "DEST" });
    expect(await completed).toEqual({ ok: true, failedFiles: [] });
    expect(
      recorded.done
        .filter((d) => d.skipped)
        .map((d) => d.lfn)
        .sort(),
    ).toEqual(["data.000.root", "data.001.root", "data.002.root"]);
    expect(source.gets.sort()).toEqual(["data.003.root", "data.004.root", "data.005.root"]);
    expect(await dest.stat("data.005.root")).toMatchObject({ checksum: files[5]?.checksum });
  });

  it("gives up on a file after the configured attempts, backing off exponentially", async () => {
    const { agent, files, recorded, completed } = await setup(2, { maxAttempts: 3, retryBaseDelayMs: 100 });
    const missing = { ...files[0]!, lfn: "never.created" };
    agent.submit({ subscriptionId: "sub-3", files: [missing, files[1]!], destSite: "DEST" });

    expect(await completed).toEqual({ ok: false, failedFiles: ["never.created"] });
    expect(recorded.failed.map((f) => [f.attempt, f.willRetry])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(recorded.failed[0]?.error.message).toMatch(/no file at never.created/);
    expect(recorded.delaysMs).toEqual([100, 200]);
    expect(recorded.done.map((d) => d.lfn)).toEqual(["data.001.root"]);
  });

  it("does not retry what cannot succeed, such as an unknown source site", async () => {
    const { agent, files, recorded, completed } = await setup(1);
    agent.submit({
      subscriptionId: "sub-4",
      files: [{ ...files[0]!, sourceSite: "ATLANTIS" }],
      destSite: "DEST",
    });
    expect(await completed).toEqual({ ok: false, failedFiles: ["data.000.root"] });
    expect(recorded.failed).toHaveLength(1);
    expect(recorded.failed[0]?.error).toBeInstanceOf(TransferError);
    expect(recorded.failed[0]?.willRetry).toBe(false);
  });

  it("serves a repeated submit once and completes an empty one", async () => {
    const { agent, files, recorded, completed } = await setup(2);
    expect(agent.submit({ subscriptionId: "sub-5", files, destSite: "DEST" })).toBe(true);
    expect(agent.submit({ subscriptionId: "sub-5", files, destSite: "DEST" })).toBe(false);
    await completed;
    expect(recorded.done).toHaveLength(2);

    const empty = await setup(0);
    empty.agent.submit({ subscriptionId: "empty", files: [], destSite: "DEST" });
    expect(empty.recorded.completions).toEqual([]);
    expect(await empty.completed).toEqual({ ok: true, failedFiles: [] });
  });

  it("refuses a malformed request, naming the bad field", async () => {
    const { agent, files } = await setup(1);
    const bad = { subscriptionId: "sub-6", files: [{ ...files[0]!, checksum: "md5:abc" }], destSite: "DEST" };
    expect(() => agent.submit(bad)).toThrow(/files\.0\.checksum: must be adler32/);
    expect(
      () => new TransferAgent({ storage: new Map(), events: silentEvents(), config: { concurrency: 0 } }),
    ).toThrow(/concurrency/);
  });

  it("stops a cancelled subscription: queued files dropped, no further events", async () => {
    const { agent, dest, files, recorded } = await setup(10, { concurrency: 2 });
    let open: () => void = () => {};
    dest.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const twoInFlight = dest.whenActivePuts(2);
    agent.submit({ subscriptionId: "sub-7", files, destSite: "DEST" });
    await twoInFlight;
    expect(agent.cancel("sub-7")).toBe(true);
    expect(agent.cancel("sub-7")).toBe(false);
    expect(agent.stats().queuedFiles).toBe(0);
    open();
    await agent.idle();
    expect(recorded.done).toEqual([]);
    expect(recorded.completions).toEqual([]);
  });
});

function silentEvents() {
  return { onFileDone() {}, onFileFailed() {}, onComplete() {} };
}
