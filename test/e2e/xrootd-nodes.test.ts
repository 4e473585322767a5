import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { describe, expect, it, vi } from "vitest";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { sandboxPath } from "../../src/sandbox/sandbox-ref.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { bytes, useTempDirs } from "../transfer/helpers.js";
import { filesHolding, filesUnder, runXrootdTests, useXrootdGrid, writeFiles } from "./xrootd-fixture.js";

const grid = useXrootdGrid();
const tempDir = useTempDirs();

/** Only in the user's code: found in a node's data directory, the code (or its archive) would be there. */
const CODE_MARKER = "panda-e2e-two-nodes-sandbox-code";

/** A script that counts the bytes of the job's inputs, as `wc -c` would print them. */
async function countCode(): Promise<string> {
  const dir = await tempDir();
  await writeFile(
    join(dir, "count.py"),
    `import glob, os, sys\n# ${CODE_MARKER}\nwith open(f"count-{sys.argv[1]}.txt", "w") as out:\n    for name in sorted(glob.glob("in*.dat")):\n        out.write(f"{os.path.getsize(name)} {name}\\n")\n`,
  );
  return dir;
}

describe.skipIf(!runXrootdTests)("two server nodes on XRootD storage elements", () => {
  it("with different data directories, share nothing but Redis: a dataset and a sandbox put through one are run at and got back through the other", async () => {
    const fixture = await grid();
    const second = await fixture.addNode();
    const inputs = { "in1.dat": bytes(150_000, 31), "in2.dat": bytes(90_000, 32) };
    const put = await fixture.panda(
      ["ds", "put", "user.alice.shared", ...writeFiles(await tempDir(), inputs), "--site", "SITE-A"],
      second,
    );
    expect(put.code, put.stderr).toBe(0);
    // Neither node hands out the sandbox: the pilot takes it from XRootD.
    const sandboxReads = [fixture.node, second].map((node) =>
      vi.spyOn(node.grid.ctx.storage.sandboxElement!, "get"),
    );

    // The pilot is on the first node; the task and its sandbox go through the second.
    fixture.startPilot("SITE-B");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const submit = await fixture.panda(
      [
        "submit",
        "--sandbox",
        await countCode(),
        "--site",
        "SITE-B",
        "--input",
        "user.alice.shared",
        "--output",
        "user.alice.shared.out",
        "--output-file",
        "count-{jobId}.txt",
        "--json",
        "--",
        "python3",
        "count.py",
        "{jobId}",
      ],
      second,
    );
    expect(submit.code, submit.stderr).toBe(0);
    const taskId = (JSON.parse(submit.stdout) as { taskId: string }).taskId;
    // Either node reads the task from Redis, whichever shard it is on.
    const task = await until(async () => {
      const read = await readContext(fixture.node.grid.ctx, "task", taskId);
      return read?.context.counts.finished === 2 ? read : undefined;
    }, 60_000);
    for (const spy of sandboxReads) expect(spy).not.toHaveBeenCalled();

    const dest = await tempDir();
    const get = await fixture.panda(["ds", "get", "user.alice.shared.out", "--dest", dest, "--json"]);
    expect(get.code, get.stderr).toBe(0);
    const files = JSON.parse(get.stdout).files as { lfn: string; checksum: string }[];
    const counts = files.filter((f) => f.lfn.startsWith("count-"));
    expect(counts).toHaveLength(2);
    for (const file of counts) {
      const content = readFileSync(join(dest, file.lfn));
      expect(checksumOfBytes(content)).toBe(file.checksum);
      expect(content.toString()).toMatch(/^\s*(150000 in1\.dat|90000 in2\.dat)$/m);
    }
    // Neither node's data directory holds any of the bytes: inputs, the sandbox's archive, its code.
    const sandbox = (task.context as TaskContext).sandbox!;
    const archive = await buffer(await fixture.sandboxElement().get(sandboxPath(sandbox.sha256)));
    const needles = [
      inputs["in1.dat"].subarray(0, 4096),
      inputs["in2.dat"].subarray(0, 4096),
      Buffer.from("in1.dat"),
      archive.subarray(0, 4096),
      Buffer.from(CODE_MARKER),
    ];
    for (const dir of [fixture.dataDir, second.dataDir]) {
      expect(filesUnder(dir).filter((f) => f.startsWith("storage") || f.startsWith("sandboxes"))).toEqual([]);
      expect(filesHolding(dir, needles)).toEqual([]);
    }
  });
});
