import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checksumOfBytes, StorageError } from "../../src/transfer/index.js";
import { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { startXrootd, useXrootdClientEnv, type XrootdServer, xrootdAvailable } from "../support/xrootd.js";
import { bytes, expectedOf, rejectionOf } from "./helpers.js";
import { storageElementContract, subjectOver } from "./storage-element-contract.js";

const inCi = process.env.CI === "true";

describe.skipIf(!xrootdAvailable() && !inCi)("XrootdStorageElement", () => {
  let servers: XrootdServer[] = [];
  let restoreEnv: () => void = () => {};
  let counter = 0;

  beforeAll(async () => {
    if (!xrootdAvailable()) throw new Error("CI=true but xrootd is not installed: .ci/run installs it");
    restoreEnv = useXrootdClientEnv();
    servers = await Promise.all([startXrootd(), startXrootd()]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    restoreEnv();
  });

  /** A fresh element on a server: its own base path, so tests share a server without seeing each other. */
  function element(server = servers[0]!) {
    const basePath = `/panda/t${++counter}`;
    const se = new XrootdStorageElement({ endpoint: server.endpoint, basePath });
    const root = join(server.exportDir, basePath);
    return { se, root };
  }

  storageElementContract("XrootdStorageElement", async () => {
    const { se, root } = element();
    return subjectOver(se, root);
  });

  it("copies server to server (third-party), verified at the destination", async () => {
    const source = element(servers[0]);
    const dest = element(servers[1]);
    const data = bytes(2_000_000, 9);
    await source.se.put("ds/big", data, expectedOf(data));
    const copied = await dest.se.copyFrom(source.se, "ds/big", expectedOf(data));
    expect(copied).toMatchObject({
      created: true,
      ...expectedOf(data),
      sha256: checksumOfBytes(data, "sha256"),
    });
    expect(await dest.se.stat("ds/big")).toMatchObject(expectedOf(data));
    expect((await dest.se.copyFrom(source.se, "ds/big", expectedOf(data)))?.created).toBe(false);
  });

  it("refuses to copy a source that is not what the catalog says, and leaves nothing behind", async () => {
    const source = element(servers[0]);
    const dest = element(servers[1]);
    const data = bytes(5_000, 2);
    await source.se.put("f", data, expectedOf(data));
    const err = await rejectionOf(
      dest.se.copyFrom(source.se, "f", { sizeBytes: data.length, checksum: "adler32:00000001" }),
      StorageError,
    );
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(await dest.se.list("")).toEqual([]);
  });

  it("answers URLs pilots can reach files at", () => {
    const { se } = element();
    expect(se.directUrl("ds/f")).toBe(`root://127.0.0.1:${servers[0]!.port}//panda/t${counter}/ds/f`);
    expect(() => se.directUrl("a?b")).toThrow(/cannot be stored on XRootD/);
  });
});
