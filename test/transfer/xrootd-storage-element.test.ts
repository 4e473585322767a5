import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checksumOfBytes,
  DirectoryStorageElement,
  type StorageElement,
  StorageError,
  TransferAgent,
} from "../../src/transfer/index.js";
import { downloadXrootd, uploadXrootd } from "../../src/transfer/xrootd-client.js";
import { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { startXrootd, useXrootdClientEnv, type XrootdServer, xrootdAvailable } from "../support/xrootd.js";
import { bytes, expectedOf, rejectionOf, useTempDirs } from "./helpers.js";
import { storageElementContract, subjectOver } from "./storage-element-contract.js";

const inCi = process.env.CI === "true";
const tempDir = useTempDirs();

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

  it("moves a mixed pair (directory to XRootD and back) by streaming through the agent", async () => {
    const local = new DirectoryStorageElement(await tempDir());
    const remote = element(servers[1]);
    const data = bytes(500_000, 3);
    await local.put("ds/f", data, expectedOf(data));
    const storage = new Map<string, StorageElement>([
      ["LOCAL", local],
      ["XRD", remote.se],
      ["LOCAL2", new DirectoryStorageElement(await tempDir())],
    ]);
    const completed: string[] = [];
    const agent = new TransferAgent({
      storage,
      events: { onFileDone: () => {}, onFileFailed: () => {}, onComplete: (id) => completed.push(id) },
    });
    const file = { lfn: "ds/f", ...expectedOf(data) };
    agent.submit({ subscriptionId: "in", destSite: "XRD", files: [{ ...file, sourceSite: "LOCAL" }] });
    await agent.idle();
    agent.submit({ subscriptionId: "out", destSite: "LOCAL2", files: [{ ...file, sourceSite: "XRD" }] });
    await agent.idle();
    expect(completed).toEqual(["in", "out"]);
    expect(await storage.get("LOCAL2")!.stat("ds/f")).toMatchObject(expectedOf(data));
  });

  it("downloads for a pilot with xrdcp, and refuses bytes that are not as expected", async () => {
    const { se } = element();
    const data = bytes(40_000, 6);
    await se.put("in/f", data, expectedOf(data));
    const dir = await tempDir();
    await downloadXrootd(se.directUrl("in/f"), join(dir, "f"), expectedOf(data));
    expect(await readFile(join(dir, "f"))).toEqual(data);
    const err = await rejectionOf(
      downloadXrootd(se.directUrl("in/f"), join(dir, "g"), {
        sizeBytes: data.length,
        checksum: "adler32:00000001",
      }),
      StorageError,
    );
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(await readdir(dir)).toEqual(["f"]);
    // And uploads into the element's directory, as a pilot's stage-out does.
    await writeFile(join(dir, "out"), "payload output");
    const stored = await uploadXrootd(
      se.directBaseUrl(),
      "out/o1",
      join(dir, "out"),
      checksumOfBytes(Buffer.from("payload output")),
    );
    expect(stored).toMatchObject({ created: true, sizeBytes: 14 });
    expect(await se.list("out/")).toEqual(["out/o1"]);
  });

  it("sweeps temp files left behind by writers that died, by the age in their names", async () => {
    const { se, root } = element();
    const data = Buffer.from("made by the server");
    // A put makes the temp directory as the server's own user, as a crashed copy would have.
    await se.put("f", data, expectedOf(data));
    const tmp = join(root, ".panda-se", "tmp");
    const dayMs = 86_400_000;
    await writeFile(join(tmp, `${Date.now() - 2 * dayMs}-abandoned`), "half a file");
    await writeFile(join(tmp, `${Date.now()}-in-progress`), "being written");
    expect(await se.sweepTemp(dayMs)).toBe(1);
    expect((await readdir(tmp)).map((n) => n.replace(/^\d+-/, ""))).toEqual(["in-progress"]);
    expect(await se.list("")).toEqual(["f"]);
  });

  it("answers URLs pilots can reach files at", () => {
    const { se } = element();
    expect(se.directUrl("ds/f")).toBe(`root://127.0.0.1:${servers[0]!.port}//panda/t${counter}/ds/f`);
    expect(() => se.directUrl("a?b")).toThrow(/cannot be stored on XRootD/);
  });
});
