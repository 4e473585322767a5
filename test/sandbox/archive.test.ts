import { existsSync } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packDirectory, SandboxPackError } from "../../src/sandbox/archive-pack.js";
import { EntryPlanner, SandboxRefused } from "../../src/sandbox/archive-rules.js";
import { unpackArchive } from "../../src/sandbox/archive-unpack.js";
import { matchesAnyGlob } from "../../src/sandbox/glob.js";
import { hostileArchives, sha256Of, writeArchive } from "./hostile-archives.js";

const LIMITS = { maxUnpackedBytes: 1024 * 1024, maxEntries: 100 };
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "panda-sandbox-"));
  dirs.push(dir);
  return dir;
}

/** A directory of code as a user has it: a script, a module below, a symlink, build junk. */
async function userCode(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, "lib"));
  await writeFile(join(dir, "run.py"), "print('hello')\n");
  await chmod(join(dir, "run.py"), 0o755);
  await writeFile(join(dir, "lib", "util.py"), "X = 1\n");
  await symlink("lib/util.py", join(dir, "util.py"));
  await writeFile(join(dir, "lib", "util.pyc"), "junk");
  await mkdir(join(dir, ".git"));
  await writeFile(join(dir, ".git", "HEAD"), "ref\n");
  return dir;
}

describe("packing a directory", () => {
  it("is reproducible: the same files make the same bytes and sha256, whenever packed", async () => {
    const code = await userCode();
    const out = await tempDir();
    const first = await packDirectory(code, join(out, "a.tar.gz"), { maxBytes: 1 << 20 });
    // Touched files with the same content: times are not part of the archive.
    await writeFile(join(code, "run.py"), "print('hello')\n");
    const second = await packDirectory(code, join(out, "b.tar.gz"), { maxBytes: 1 << 20 });
    expect(second.sha256).toBe(first.sha256);
    expect(sha256Of(await readFile(join(out, "b.tar.gz")))).toBe(first.sha256);
    expect(first.sizeBytes).toBe((await stat(join(out, "a.tar.gz"))).size);
  });

  it("leaves excluded paths out and unpacks to the same tree, modes and links kept", async () => {
    const code = await userCode();
    const out = await tempDir();
    const packed = await packDirectory(code, join(out, "s.tar.gz"), {
      exclude: ["*.pyc", ".git"],
      maxBytes: 1 << 20,
    });
    const into = await tempDir();
    const result = await unpackArchive(packed.archivePath, into, LIMITS);
    expect((await readdir(into)).sort()).toEqual(["lib", "run.py", "util.py"]);
    expect(await readdir(join(into, "lib"))).toEqual(["util.py"]);
    expect((await stat(join(into, "run.py"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(into, "lib", "util.py"))).mode & 0o777).toBe(0o644);
    expect(await readlink(join(into, "util.py"))).toBe("lib/util.py");
    expect(result).toEqual({ entries: 4, unpackedBytes: "print('hello')\n".length + "X = 1\n".length });
  });

  it("stops past the size limit, leaving no partial archive, and names the limit", async () => {
    const code = await tempDir();
    const { randomBytes } = await import("node:crypto");
    await writeFile(join(code, "noise.bin"), randomBytes(64 * 1024));
    const out = await tempDir();
    await expect(packDirectory(code, join(out, "s.tar.gz"), { maxBytes: 10_000 })).rejects.toThrow(
      /exceeds the limit of 10000 bytes/,
    );
    expect(existsSync(join(out, "s.tar.gz"))).toBe(false);
  });

  it("refuses a symlink out of the directory, which a pilot would refuse", async () => {
    const code = await tempDir();
    await symlink("/etc/passwd", join(code, "passwd"));
    const out = await tempDir();
    const packing = packDirectory(code, join(out, "s.tar.gz"), { maxBytes: 1 << 20 });
    await expect(packing).rejects.toBeInstanceOf(SandboxPackError);
    await expect(packing).rejects.toThrow(/symlink passwd points outside/);
  });

  it("matches globs by name at any depth, and by path when they hold a /", () => {
    expect(matchesAnyGlob("a/b/c.pyc", ["*.pyc"])).toBe(true);
    expect(matchesAnyGlob("build/x/y.o", ["build/**"])).toBe(true);
    expect(matchesAnyGlob("src/build/y.o", ["build/**"])).toBe(false);
    expect(matchesAnyGlob("src/build", ["**/build"])).toBe(true);
    expect(matchesAnyGlob("run.py", ["*.pyc", "r?n.txt"])).toBe(false);
  });
});

describe("unpacking a hostile sandbox", () => {
  const cases = Object.keys(hostileArchives("/x"));
  it.each(cases)("refuses %s before writing anything, and writes nothing outside", async (name) => {
    const root = await tempDir();
    const workdir = join(root, "work");
    await mkdir(workdir);
    const canary = join(root, "canary");
    const { entries, refusal } = hostileArchives(canary)[name]!;
    const archive = join(root, "s.tar.gz");
    await writeArchive(archive, entries);
    const unpacking = unpackArchive(archive, workdir, LIMITS);
    await expect(unpacking).rejects.toBeInstanceOf(SandboxRefused);
    await expect(unpacking).rejects.toThrow(refusal);
    expect(await readdir(workdir)).toEqual([]);
    expect(existsSync(canary)).toBe(false);
  });

  it("refuses an archive whose files add up to more than the unpacked limit", async () => {
    const root = await tempDir();
    const archive = join(root, "s.tar.gz");
    await writeArchive(archive, [
      { header: { name: "a" }, body: Buffer.alloc(600) },
      { header: { name: "b" }, body: Buffer.alloc(600) },
    ]);
    await expect(unpackArchive(archive, root, { maxUnpackedBytes: 1000, maxEntries: 10 })).rejects.toThrow(
      /unpacked size exceeds the limit of 1000 bytes \(at entry "b"\)/,
    );
  });

  it("refuses more entries than the limit", async () => {
    const root = await tempDir();
    const archive = join(root, "s.tar.gz");
    await writeArchive(
      archive,
      [1, 2, 3].map((i) => ({ header: { name: `f${i}` }, body: "x" })),
    );
    await expect(unpackArchive(archive, root, { maxUnpackedBytes: 1000, maxEntries: 2 })).rejects.toThrow(
      /more than 2 entries/,
    );
  });

  it("refuses a gzip bomb while decompressing, before the disk", async () => {
    const root = await tempDir();
    const archive = join(root, "s.tar.gz");
    const { gzipSync } = await import("node:zlib");
    await writeFile(archive, gzipSync(Buffer.alloc(8 * 1024 * 1024)));
    await expect(unpackArchive(archive, root, { maxUnpackedBytes: 1024, maxEntries: 2 })).rejects.toThrow(
      /decompresses to more than/,
    );
  });

  it("refuses bytes that are not a tar.gz", async () => {
    const root = await tempDir();
    const archive = join(root, "s.tar.gz");
    await writeFile(archive, "not an archive");
    await expect(unpackArchive(archive, join(root), LIMITS)).rejects.toThrow(/not a readable tar.gz/);
  });

  it("accepts links that stay inside: a symlink up within the tree and a hard link to an earlier file", async () => {
    const root = await tempDir();
    const archive = join(root, "s.tar.gz");
    await writeArchive(archive, [
      { header: { name: "lib/a.py" }, body: "A\n" },
      { header: { name: "bin", type: "directory" } },
      { header: { name: "bin/a.py", type: "symlink", linkname: "../lib/a.py" } },
      { header: { name: "copy.py", type: "link", linkname: "lib/a.py" } },
    ]);
    const into = join(root, "work");
    await mkdir(into);
    await unpackArchive(archive, into, LIMITS);
    expect(await readFile(join(into, "bin", "a.py"), "utf8")).toBe("A\n");
    expect((await lstat(join(into, "copy.py"))).nlink).toBe(2);
  });
});

describe("entry rules", () => {
  it("drops ./ and trailing slashes, and takes ./ itself as the directory", () => {
    const planner = new EntryPlanner(LIMITS);
    expect(planner.add({ name: "./", type: "directory" })).toBeNull();
    expect(planner.add({ name: "./src/", type: "directory" })).toEqual({ kind: "directory", path: "src" });
    expect(planner.add({ name: "src//main.py", size: 3, mode: 0o644 })).toMatchObject({
      path: "src/main.py",
    });
  });

  it("refuses a file that would replace a directory earlier entries lie in", () => {
    const planner = new EntryPlanner(LIMITS);
    planner.add({ name: "d/f", size: 1 });
    expect(() => planner.add({ name: "d", type: "symlink", linkname: "." })).toThrow(
      /would replace a directory/,
    );
  });

  it("refuses a hard link to a symlink or a later file", () => {
    const planner = new EntryPlanner(LIMITS);
    planner.add({ name: "s", type: "symlink", linkname: "t" });
    expect(() => planner.add({ name: "h", type: "link", linkname: "s" })).toThrow(
      /must name a regular file earlier/,
    );
    expect(() => planner.add({ name: "h2", type: "link", linkname: "later" })).toThrow(
      /must name a regular file/,
    );
  });
});
