// The behaviour every StorageElement promises, as one suite run against each kind (directory, XRootD).
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import {
  checksumOfBytes,
  isStorageError,
  type StorageElement,
  StorageError,
} from "../../src/transfer/index.js";
import { bytes, expectedOf, rejectionOf } from "./helpers.js";

export interface ContractSubject {
  se: StorageElement;
  /** Writes a file straight into the element's storage, behind its back (as another tool would). */
  plant(path: string, content: string): Promise<void>;
  /** Files left in the element's own temp directory. */
  tempFiles(): Promise<string[]>;
}

/** A subject whose files live under `root` on this machine (a directory element, or an XRootD server's export). */
export function subjectOver(se: StorageElement, root: string): ContractSubject {
  return {
    se,
    async plant(path, content) {
      const file = join(root, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content);
    },
    tempFiles: () => readdir(join(root, ".panda-se", "tmp")).catch(() => []),
  };
}

function rejection(promise: Promise<unknown>): Promise<StorageError> {
  return rejectionOf(promise, StorageError);
}

export function storageElementContract(name: string, subject: () => Promise<ContractSubject>): void {
  describe(`${name}: the storage element contract`, () => {
    it("stores, describes, lists, reads back and deletes a file", async () => {
      const { se } = await subject();
      const data = bytes(100_000);
      const result = await se.put("datasets/ds1/f1.root", data, expectedOf(data));
      expect(result).toMatchObject({ created: true, sizeBytes: 100_000, checksum: checksumOfBytes(data) });
      expect(result.sha256).toBe(checksumOfBytes(data, "sha256"));
      expect(await se.stat("datasets/ds1/f1.root")).toEqual({
        sizeBytes: result.sizeBytes,
        checksum: result.checksum,
        sha256: result.sha256,
      });
      const readBack = await se.get("datasets/ds1/f1.root");
      expect(Buffer.concat(await readBack.toArray())).toEqual(data);
      expect(await se.list("")).toEqual(["datasets/ds1/f1.root"]);
      expect(await se.delete("datasets/ds1/f1.root")).toBe(true);
      expect(await se.delete("datasets/ds1/f1.root")).toBe(false);
      expect(await se.stat("datasets/ds1/f1.root")).toBeNull();
      expect((await rejection(se.get("datasets/ds1/f1.root"))).code).toBe("NOT_FOUND");
    });

    it("takes a stream as input and accepts a sha256 expectation", async () => {
      const { se } = await subject();
      const data = bytes(30_000, 5);
      const stream = Readable.from([data.subarray(0, 1000), data.subarray(1000)]);
      const result = await se.put("f", stream, {
        sizeBytes: data.length,
        checksum: checksumOfBytes(data, "sha256"),
      });
      expect(result.created).toBe(true);
      expect(await se.stat("f")).toMatchObject({ sha256: checksumOfBytes(data, "sha256") });
    });

    it("refuses a checksum mismatch and leaves nothing under the name or in its temp space", async () => {
      const { se, tempFiles } = await subject();
      const data = bytes(10_000);
      const err = await rejection(
        se.put("a/f", data, { sizeBytes: data.length, checksum: "adler32:00000001" }),
      );
      expect(err.code).toBe("CHECKSUM_MISMATCH");
      expect(err.path).toBe("a/f");
      expect(err.details).toMatchObject({ expected: "adler32:00000001", actual: checksumOfBytes(data) });
      expect(await se.stat("a/f")).toBeNull();
      expect(await se.list("")).toEqual([]);
      expect(await tempFiles()).toEqual([]);
    });

    it("refuses data longer or shorter than announced", async () => {
      const { se } = await subject();
      const data = bytes(10_000);
      expect((await rejection(se.put("long", data, { ...expectedOf(data), sizeBytes: 9_999 }))).code).toBe(
        "SIZE_MISMATCH",
      );
      expect((await rejection(se.put("short", data, { ...expectedOf(data), sizeBytes: 10_001 }))).code).toBe(
        "SIZE_MISMATCH",
      );
      expect(await se.list("")).toEqual([]);
    });

    it("refuses malformed expectations", async () => {
      const { se } = await subject();
      const data = bytes(10);
      expect((await rejection(se.put("f", data, { sizeBytes: 10, checksum: "crc:1" }))).code).toBe(
        "BAD_CHECKSUM",
      );
      expect(
        (await rejection(se.put("f", data, { sizeBytes: -1, checksum: checksumOfBytes(data) }))).code,
      ).toBe("BAD_SIZE");
    });

    it("refuses paths that could escape the root, naming the bad path", async () => {
      const { se } = await subject();
      const data = bytes(10);
      const bad = [
        "../../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "a\0b",
        "a\\..\\b",
        "",
        "a//b",
        "./a",
        ".panda-se/tmp/x",
      ];
      for (const path of bad) {
        for (const attempt of [
          se.put(path, data, expectedOf(data)),
          se.get(path),
          se.stat(path),
          se.delete(path),
        ]) {
          const err = await rejection(attempt);
          expect(err.code).toBe("BAD_PATH");
          expect(err.path).toBe(path);
          expect(err.message).toContain(JSON.stringify(path));
        }
      }
      expect((await rejection(se.list("../"))).code).toBe("BAD_PATH");
    });

    it("accepts a repeated identical put and refuses a different file under the same path", async () => {
      const { se } = await subject();
      const data = bytes(1000, 1);
      await se.put("f", data, expectedOf(data));
      expect((await se.put("f", Readable.from([data]), expectedOf(data))).created).toBe(false);
      const other = bytes(1000, 2);
      const err = await rejection(se.put("f", other, expectedOf(other)));
      expect(err.code).toBe("EXISTS");
      expect(isStorageError(err, "EXISTS")).toBe(true);
    });

    it("lets exactly one of many concurrent identical puts create the file", async () => {
      const { se } = await subject();
      const data = bytes(200_000, 4);
      const results = await Promise.all(
        Array.from({ length: 5 }, () => se.put("race", data, expectedOf(data))),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await se.stat("race")).toMatchObject(expectedOf(data));
    });

    it("computes checksums for files put there by other means, and again when rewritten", async () => {
      const { se, plant } = await subject();
      await plant("outside/file", "hello");
      expect(await se.stat("outside/file")).toMatchObject({
        sizeBytes: 5,
        checksum: checksumOfBytes(Buffer.from("hello")),
        sha256: checksumOfBytes(Buffer.from("hello"), "sha256"),
      });
      // Rewritten behind its back: the remembered checksum must not be trusted.
      await plant("outside/file", "hello, world");
      expect(await se.stat("outside/file")).toMatchObject({
        sizeBytes: 12,
        checksum: checksumOfBytes(Buffer.from("hello, world")),
        sha256: checksumOfBytes(Buffer.from("hello, world"), "sha256"),
      });
      expect(await text(await se.get("outside/file"))).toBe("hello, world");
    });

    it("lists by directory or partial-name prefix, never its own metadata", async () => {
      const { se } = await subject();
      for (const path of ["ds1/a", "ds1/b", "ds10/c", "ds2/d", "top"]) {
        const data = Buffer.from(path);
        await se.put(path, data, expectedOf(data));
      }
      expect(await se.list("")).toEqual(["ds1/a", "ds1/b", "ds10/c", "ds2/d", "top"]);
      expect(await se.list("ds1/")).toEqual(["ds1/a", "ds1/b"]);
      expect(await se.list("ds1")).toEqual(["ds1/a", "ds1/b", "ds10/c"]);
      expect(await se.list("ds1/b")).toEqual(["ds1/b"]);
      expect(await se.list("nope/")).toEqual([]);
    });

    it("treats a directory as no file", async () => {
      const { se } = await subject();
      const data = Buffer.from("x");
      await se.put("dir/file", data, expectedOf(data));
      expect(await se.stat("dir")).toBeNull();
      expect((await rejection(se.get("dir"))).code).toBe("NOT_FOUND");
      expect(await se.delete("dir")).toBe(false);
      expect((await rejection(se.put("dir", data, expectedOf(data)))).code).toBe("EXISTS");
      expect((await rejection(se.put("dir/file/below", data, expectedOf(data)))).code).toBe("EXISTS");
    });
  });
}
