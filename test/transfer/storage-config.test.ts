import { describe, expect, it } from "vitest";
import { sitesFileSchema } from "../../src/cli/server-config.js";
import {
  createStorageElement,
  DirectoryStorageElement,
  storageConfigSchema,
} from "../../src/transfer/index.js";
import { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { gridSiteSchema } from "../../src/workload/grid-site.js";
import { useTempDirs } from "./helpers.js";

const tempDir = useTempDirs();
const resources = { slots: 1, memoryPerSlotMb: 1000, diskMb: 1000, walltimeSec: { min: 0, max: 3600 } };

/** The first problem a schema finds, as `path: message`. */
function problem(result: {
  success: boolean;
  error?: { issues: { path: PropertyKey[]; message: string }[] };
}) {
  const issue = result.error?.issues[0];
  return issue ? `${issue.path.join(".")}: ${issue.message}` : null;
}

describe("a site's storage configuration", () => {
  it("is a local directory unless the site says otherwise", async () => {
    const site = gridSiteSchema.parse({ name: "SITE-A", resources });
    expect(site.storage).toEqual({ type: "local" });
    const root = await tempDir();
    expect(createStorageElement(site.storage, "SITE-A", root)).toBeInstanceOf(DirectoryStorageElement);
  });

  it("takes an XRootD endpoint and base path", () => {
    const storage = storageConfigSchema.parse({
      type: "xrootd",
      endpoint: "root://se.example.org:1094/",
      basePath: "/atlas/panda/",
    });
    const element = createStorageElement(storage, "SITE-A", "/unused");
    expect(element).toBeInstanceOf(XrootdStorageElement);
    expect(element.directBaseUrl?.()).toBe("root://se.example.org:1094//atlas/panda");
    // No port: XRootD's own.
    const defaultPort = createStorageElement(
      storageConfigSchema.parse({ type: "xrootd", endpoint: "root://se.example.org", basePath: "/d" }),
      "SITE-A",
      "/unused",
    );
    expect(defaultPort.directUrl?.("f")).toBe("root://se.example.org:1094//d/f");
  });

  it("refuses a bad one, naming the field", () => {
    const site = (storage: unknown) =>
      sitesFileSchema.safeParse({ sites: [{ name: "S", resources, storage }] });
    expect(problem(site({ type: "s3" }))).toMatch(/^sites\.0\.storage\.type: /);
    expect(problem(site({ type: "xrootd", basePath: "/d" }))).toMatch(/^sites\.0\.storage\.endpoint: /);
    expect(problem(site({ type: "xrootd", endpoint: "http://se/", basePath: "/d" }))).toMatch(
      /^sites\.0\.storage\.endpoint: must be root:\/\/host\[:port\]\//,
    );
    expect(problem(site({ type: "xrootd", endpoint: "root://se/dir", basePath: "/d" }))).toMatch(
      /^sites\.0\.storage\.endpoint: /,
    );
    expect(problem(site({ type: "xrootd", endpoint: "root://se/", basePath: "relative" }))).toMatch(
      /^sites\.0\.storage\.basePath: must be an absolute path/,
    );
    expect(problem(site({ type: "xrootd", endpoint: "root://se/", basePath: "/a/../b" }))).toMatch(
      /^sites\.0\.storage\.basePath: must not contain/,
    );
    expect(problem(site({ type: "local", endpoint: "root://se/" }))).toMatch(/^sites\.0\.storage: /);
  });
});
