import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DirectoryStorageElement } from "../../src/transfer/index.js";
import { bytes, expectedOf, useTempDirs } from "./helpers.js";
import { storageElementContract, subjectOver } from "./storage-element-contract.js";

const tempDir = useTempDirs();

async function element(): Promise<{ se: DirectoryStorageElement; root: string }> {
  const root = await tempDir();
  return { se: new DirectoryStorageElement(root), root };
}

storageElementContract("DirectoryStorageElement", async () => {
  const { se, root } = await element();
  return subjectOver(se, root);
});

describe("DirectoryStorageElement", () => {
  it("keeps a file's bytes under its path in the root directory", async () => {
    const { se, root } = await element();
    const data = bytes(100_000);
    await se.put("datasets/ds1/f1.root", data, expectedOf(data));
    expect(await readFile(join(root, "datasets/ds1/f1.root"))).toEqual(data);
  });

  it("leaves its temp directory empty after a refused put", async () => {
    const { se, root } = await element();
    const data = bytes(10_000);
    await expect(
      se.put("a/f", data, { sizeBytes: data.length, checksum: "adler32:00000001" }),
    ).rejects.toThrow();
    expect(await readdir(join(root, ".panda-se", "tmp"))).toEqual([]);
  });

  it("sweeps temp files left behind by writers that died, by their age", async () => {
    const { se, root } = await element();
    const tmp = join(root, ".panda-se", "tmp");
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, "abandoned"), "half a file");
    await writeFile(join(tmp, "in-progress"), "being written");
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    await utimes(join(tmp, "abandoned"), twoDaysAgo, twoDaysAgo);
    expect(await se.sweepTemp(86_400_000)).toBe(1);
    expect(await readdir(tmp)).toEqual(["in-progress"]);
  });
});
