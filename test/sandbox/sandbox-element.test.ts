// Where a server keeps sandboxes (`sandbox.storage`): a local directory, or an XRootD server configured as a site's storage is.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sandboxFileSchema } from "../../src/cli/server-config.js";
import { sandboxElementFrom, serverSandboxSchema } from "../../src/sandbox/sandbox-element.js";
import { sandboxPath } from "../../src/sandbox/sandbox-ref.js";
import { DirectoryStorageElement } from "../../src/transfer/directory-storage-element.js";
import { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { useTempDirs } from "../transfer/helpers.js";

const tempDir = useTempDirs();

/** Every problem the sandbox file schema finds, as `path: message`. */
function problems(storage: unknown): string[] {
  const parsed = sandboxFileSchema.safeParse({ sandbox: { storage } });
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("the sandboxes' storage element", () => {
  it("is a directory on the node unless configured otherwise, made when missing", async () => {
    const config = serverSandboxSchema.parse({});
    expect(config.storage).toEqual({ type: "local" });
    const dir = join(await tempDir(), "sandboxes");
    const element = sandboxElementFrom(config.storage, dir);
    expect(element).toBeInstanceOf(DirectoryStorageElement);
    expect(existsSync(dir)).toBe(true);
    expect(element.directUrl).toBeUndefined();
  });

  it("is an XRootD server's directory, whose archives pilots reach by root:// URL; no directory is made on the node", async () => {
    const defaultDir = join(await tempDir(), "sandboxes");
    const config = serverSandboxSchema.parse({
      storage: { type: "xrootd", endpoint: "root://se.example.org:1095/", basePath: "/panda/sandboxes/" },
    });
    const element = sandboxElementFrom(config.storage, defaultDir);
    expect(element).toBeInstanceOf(XrootdStorageElement);
    const sha256 = "ab".repeat(32);
    expect(element.directUrl?.(sandboxPath(sha256))).toBe(
      `root://se.example.org:1095//panda/sandboxes/sandboxes/ab/${sha256}.tar.gz`,
    );
    expect(existsSync(defaultDir)).toBe(false);
  });

  it("refuses a bad configuration, naming the field", () => {
    expect(problems({ type: "s3" })[0]).toMatch(/^sandbox\.storage\.type: /);
    expect(problems({ type: "xrootd", basePath: "/d" })[0]).toMatch(/^sandbox\.storage\.endpoint: /);
    expect(problems({ type: "xrootd", endpoint: "https://se/", basePath: "/d" })[0]).toMatch(
      /^sandbox\.storage\.endpoint: must be root:\/\/host\[:port\]\//,
    );
    expect(problems({ type: "xrootd", endpoint: "root://se/" })[0]).toMatch(/^sandbox\.storage\.basePath: /);
    expect(problems({ type: "xrootd", endpoint: "root://se/", basePath: "d" })[0]).toMatch(
      /^sandbox\.storage\.basePath: must be an absolute path/,
    );
    // A setting of the other type is a mistake, not ignored.
    expect(problems({ type: "xrootd", endpoint: "root://se/", basePath: "/d", path: "/x" })[0]).toMatch(
      /^sandbox\.storage: .*path/,
    );
    expect(problems({ type: "local", endpoint: "root://se/" })[0]).toMatch(/^sandbox\.storage: .*endpoint/);
  });
});
