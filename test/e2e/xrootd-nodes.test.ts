import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { bytes, useTempDirs } from "../transfer/helpers.js";
import { submitTask } from "./grid-fixture.js";
import { filesHolding, runXrootdTests, useXrootdGrid, writeFiles } from "./xrootd-fixture.js";

const grid = useXrootdGrid();
const tempDir = useTempDirs();

describe.skipIf(!runXrootdTests)("two server nodes on XRootD storage elements", () => {
  it("with different data directories, share nothing but Redis: a dataset put through one is run at and got back through the other", async () => {
    const fixture = await grid();
    const second = await fixture.addNode();
    const inputs = { "in1.dat": bytes(150_000, 31), "in2.dat": bytes(90_000, 32) };
    const put = await fixture.panda(
      ["ds", "put", "user.alice.shared", ...writeFiles(await tempDir(), inputs), "--site", "SITE-A"],
      second,
    );
    expect(put.code, put.stderr).toBe(0);

    fixture.startPilot("SITE-B");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = "t-two-nodes";
    await submitTask(second, {
      taskId,
      site: "SITE-B",
      input: { dataset: "user.alice.shared", filesPerJob: 1 },
      outputDataset: "user.alice.shared.out",
      payload: { command: ["sh", "-c", "wc -c in*.dat > count-{jobId}.txt"], outputs: ["count-{jobId}.txt"] },
    });
    // Either node reads the task from Redis, whichever shard it is on.
    await until(async () => {
      const task = await readContext(fixture.node.grid.ctx, "task", taskId);
      return task?.context.counts.finished === 2 ? true : undefined;
    }, 60_000);

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
    // Neither node's data directory holds any of the bytes.
    const needles = [
      inputs["in1.dat"].subarray(0, 4096),
      inputs["in2.dat"].subarray(0, 4096),
      Buffer.from("in1.dat"),
    ];
    for (const dir of [fixture.dataDir, second.dataDir]) expect(filesHolding(dir, needles)).toEqual([]);
  });
});
