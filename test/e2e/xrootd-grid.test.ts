import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { describe, expect, it, vi } from "vitest";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { sandboxPath } from "../../src/sandbox/sandbox-ref.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { bytes, useTempDirs } from "../transfer/helpers.js";
import { endedTask } from "./sandbox-helpers.js";
import { filesHolding, filesUnder, runXrootdTests, useXrootdGrid, writeFiles } from "./xrootd-fixture.js";

const grid = useXrootdGrid();
const tempDir = useTempDirs();

/** Written by the user's code only: found in the node's data directory, the code (or its archive) would be there. */
const CODE_MARKER = "panda-e2e-xrootd-sandbox-code";

/** A user's analysis code: a script that joins its input files, with a module of its own. */
async function joinCode(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, "lib"));
  await writeFile(join(dir, "lib", "__init__.py"), "");
  await writeFile(
    join(dir, "lib", "joiner.py"),
    `MARKER = "${CODE_MARKER}"\n\ndef join_files(names, out_path):\n    with open(out_path, "wb") as out:\n        for name in names:\n            with open(name, "rb") as f:\n                out.write(f.read())\n`,
  );
  await writeFile(
    join(dir, "join.py"),
    `import sys\nfrom lib.joiner import MARKER, join_files\njob, names = sys.argv[1], sys.argv[2:]\njoin_files(names, f"joined-{job}.dat")\nwith open(f"note-{job}.txt", "w") as note:\n    note.write(f"{job} joined by {MARKER}\\n")\n`,
  );
  return dir;
}

describe.skipIf(!runXrootdTests)("a grid on two XRootD storage elements", () => {
  it("puts a dataset at A, runs a sandboxed Python task at B after a third-party copy, and gets the outputs back; the node's data directory holds none of the bytes", async () => {
    const fixture = await grid();
    const inputs = { "evt1.dat": bytes(300_000, 11), "evt2.dat": bytes(200_000, 12) };
    const put = await fixture.panda([
      "ds",
      "put",
      "user.alice.in",
      ...writeFiles(await tempDir(), inputs),
      "--site",
      "SITE-A",
    ]);
    expect(put.code, put.stderr).toBe(0);
    // The bytes are on A's XRootD server, verified there.
    for (const [name, data] of Object.entries(inputs)) {
      expect(await fixture.element("SITE-A").stat(name)).toMatchObject({
        sizeBytes: data.length,
        checksum: checksumOfBytes(data),
      });
    }
    // Whatever moves the inputs from A to B must not read them through this node, nor the sandbox.
    const readThroughNode = vi.spyOn(fixture.element("SITE-A"), "get");
    const sandboxThroughNode = vi.spyOn(fixture.sandboxElement(), "get");
    const thirdParty = vi.spyOn(fixture.element("SITE-B"), "copyFrom");

    fixture.startPilot("SITE-B");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const submit = await fixture.panda([
      "submit",
      "--sandbox",
      await joinCode(),
      "--site",
      "SITE-B",
      "--input",
      "user.alice.in",
      "--files-per-job",
      "2",
      "--output",
      "user.alice.out",
      "--output-file",
      "joined-{jobId}.dat",
      "--output-file",
      "note-{jobId}.txt",
      "--json",
      "--",
      "python3",
      "join.py",
      "{jobId}",
      "evt1.dat",
      "evt2.dat",
    ]);
    expect(submit.code, submit.stderr).toBe(0);
    expect(submit.stderr).toMatch(/sandbox [0-9a-f]{16} \(\d+ bytes\) uploaded/);
    const taskId = (JSON.parse(submit.stdout) as { taskId: string }).taskId;
    const submittedMs = fixture.node.grid.runtime.clock.nowMs();
    const end = await endedTask(fixture.node, taskId);
    expect(end.state).toBe("done");
    expect((end.context as TaskContext).counts.finished).toBe(1);
    expect(thirdParty).toHaveBeenCalledTimes(2);
    expect(readThroughNode).not.toHaveBeenCalled();
    // The sandbox is on XRootD, and the pilot took it from there (xrdcp), not through the node.
    expect(sandboxThroughNode).not.toHaveBeenCalled();
    const sandbox = (end.context as TaskContext).sandbox!;
    const archive = await buffer(await fixture.sandboxElement().get(sandboxPath(sandbox.sha256)));
    expect(archive.length).toBe(sandbox.sizeBytes);
    // The node saw no fetch, yet the job sent with the sandbox counts as a use (retention runs from it).
    const [listed] = await fixture.node.grid.ctx.sandboxes!.list("alice", 10);
    expect(listed).toMatchObject({ sha256: sandbox.sha256, tasks: [taskId] });
    expect(listed!.lastUsedMs).toBeGreaterThan(submittedMs);

    // Inputs copied to B and outputs written there, all on B's server.
    const jobId = `${taskId}-0.1`;
    const joined = Buffer.concat([inputs["evt1.dat"], inputs["evt2.dat"]]);
    const seB = fixture.element("SITE-B");
    expect(await seB.stat("evt1.dat")).toMatchObject({ checksum: checksumOfBytes(inputs["evt1.dat"]) });
    expect(await seB.stat(`joined-${jobId}.dat`)).toMatchObject({
      sizeBytes: joined.length,
      checksum: checksumOfBytes(joined),
    });
    const out = await readContext(fixture.node.grid.ctx, "dataset", "user.alice.out");
    // The outputs and the pilot's log of the job, all registered at B.
    const logLfn = `${jobId}.1.log.txt`;
    expect(out?.context.replicas["SITE-B"]?.sort()).toEqual([
      `joined-${jobId}.dat`,
      `note-${jobId}.txt`,
      logLfn,
    ]);
    expect(await seB.stat(logLfn)).not.toBeNull();

    const dest = await tempDir();
    const get = await fixture.panda(["ds", "get", "user.alice.out", "--dest", dest, "--json"]);
    expect(get.code, get.stderr).toBe(0);
    const got = JSON.parse(get.stdout).files as { lfn: string; checksum: string; site: string }[];
    expect(got.map((f) => f.site)).toEqual(["SITE-B", "SITE-B", "SITE-B"]);
    for (const file of got) {
      expect(checksumOfBytes(readFileSync(join(dest, file.lfn))), file.lfn).toBe(file.checksum);
    }
    const joinedBack = readFileSync(join(dest, `joined-${jobId}.dat`));
    expect(joinedBack.equals(joined)).toBe(true);
    expect(readFileSync(join(dest, `note-${jobId}.txt`), "utf8")).toBe(`${jobId} joined by ${CODE_MARKER}\n`);

    // Nothing of the data or the code is in the node's data directory: no storage or sandboxes
    // there, and no file holding the inputs' bytes, the archive's or the unpacked code's.
    const dataFiles = filesUnder(fixture.dataDir);
    expect(dataFiles.filter((f) => f.startsWith("storage") || f.startsWith("sandboxes"))).toEqual([]);
    const needles = [
      inputs["evt1.dat"].subarray(0, 4096),
      inputs["evt2.dat"].subarray(0, 4096),
      archive.subarray(0, 4096),
      Buffer.from(CODE_MARKER),
      Buffer.from(jobId),
    ];
    expect(filesHolding(fixture.dataDir, needles)).toEqual([]);
  });
});
