import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { bytes, useTempDirs } from "../transfer/helpers.js";
import { submitTask } from "./grid-fixture.js";
import { filesHolding, filesUnder, runXrootdTests, useXrootdGrid, writeFiles } from "./xrootd-fixture.js";

const grid = useXrootdGrid();
const tempDir = useTempDirs();

describe.skipIf(!runXrootdTests)("a grid on two XRootD storage elements", () => {
  it("puts a dataset at A, runs its task at B after a third-party copy, and gets the outputs back; the node's data directory holds none of the bytes", async () => {
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
    // Whatever moves the inputs from A to B must not read them through this node.
    const readThroughNode = vi.spyOn(fixture.element("SITE-A"), "get");
    const thirdParty = vi.spyOn(fixture.element("SITE-B"), "copyFrom");

    fixture.startPilot("SITE-B");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = "t-xrootd";
    const done = fixture.node.grid.runtime.waitForTransition(
      { kind: "task", id: taskId },
      (t) => t.state?.status === "done",
    );
    await submitTask(fixture.node, {
      taskId,
      site: "SITE-B",
      input: { dataset: "user.alice.in", filesPerJob: 2 },
      outputDataset: "user.alice.out",
      payload: {
        command: [
          "sh",
          "-c",
          "cat evt1.dat evt2.dat > joined-{jobId}.dat && echo {jobId} > note-{jobId}.txt",
        ],
        outputs: ["joined-{jobId}.dat", "note-{jobId}.txt"],
      },
    });
    const end = await done;
    expect((end.state!.context as TaskContext).counts.finished).toBe(1);
    expect(thirdParty).toHaveBeenCalledTimes(2);
    expect(readThroughNode).not.toHaveBeenCalled();

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
    const joinedBack = readFileSync(join(dest, `joined-${jobId}.dat`));
    expect(checksumOfBytes(joinedBack)).toBe(got.find((f) => f.lfn === `joined-${jobId}.dat`)!.checksum);
    expect(joinedBack.equals(joined)).toBe(true);

    // Nothing of the data is in the node's data directory: no storage there, and no file holding the bytes.
    const dataFiles = filesUnder(fixture.dataDir);
    expect(dataFiles.filter((f) => f.startsWith("storage"))).toEqual([]);
    const needles = [
      inputs["evt1.dat"].subarray(0, 4096),
      inputs["evt2.dat"].subarray(0, 4096),
      Buffer.from(jobId),
    ];
    expect(filesHolding(fixture.dataDir, needles)).toEqual([]);
  });
});
