// Sandboxes kept on XRootD beyond the plain run: a build's product published through the node and fetched by the site's jobs from XRootD, and an archive changed on the XRootD server refused by the pilot.
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buffer, text } from "node:stream/consumers";
import { describe, expect, it, vi } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { sandboxPath } from "../../src/sandbox/sandbox-ref.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { sha256Of, writeArchive } from "../sandbox/hostile-archives.js";
import { useTempDirs } from "../transfer/helpers.js";
import { api, USER_TOKEN } from "./grid-fixture.js";
import { endedTask, writeBuildableCode } from "./sandbox-helpers.js";
import { filesHolding, filesUnder, runXrootdTests, useXrootdGrid } from "./xrootd-fixture.js";

const grid = useXrootdGrid();
const tempDir = useTempDirs();

async function pilotAtB(fixture: Awaited<ReturnType<typeof grid>>) {
  const pilot = fixture.startPilot("SITE-B");
  await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
  return pilot;
}

describe.skipIf(!runXrootdTests)("sandboxes kept on XRootD", () => {
  it("--build: the build's product goes to XRootD through the node, and the site's jobs fetch it from XRootD", async () => {
    const fixture = await grid();
    await pilotAtB(fixture);
    const fetchedThroughNode = vi.spyOn(fixture.sandboxElement(), "get");
    const code = await tempDir();
    await writeBuildableCode(code);
    const submit = await fixture.panda([
      "submit",
      "--sandbox",
      code,
      "--build",
      "python3 build.py",
      "--site",
      "SITE-B",
      "--jobs",
      "2",
      "--output-file",
      "out-{jobId}.txt",
      "--json",
      "--",
      "python3",
      "run.py",
      "{jobId}",
    ]);
    expect(submit.code, submit.stderr).toBe(0);
    const taskId = (JSON.parse(submit.stdout) as { taskId: string }).taskId;
    const task = await endedTask(fixture.node, taskId);
    expect(task.state).toBe("done");
    const build = (task.context as TaskContext).build!.sites["SITE-B"]!;
    expect(build.state).toBe("built");
    // Unpacking the source and the built sandbox: both from XRootD, neither through the node.
    expect(fetchedThroughNode).not.toHaveBeenCalled();
    const built = await fixture.sandboxElement().stat(sandboxPath(build.sandbox!.sha256));
    expect(built?.sizeBytes).toBe(build.sandbox!.sizeBytes);
    for (const index of [0, 1]) {
      const jobId = `${taskId}-${index}.1`;
      const job = (await readContext(fixture.node.grid.ctx, "job", jobId))!.context as JobContext;
      expect(job.builtSandbox?.sha256).toBe(build.sandbox!.sha256);
      expect(await text(await fixture.element("SITE-B").get(`out-${jobId}.txt`))).toBe(build.jobId);
    }
    const archive = await buffer(await fixture.sandboxElement().get(sandboxPath(build.sandbox!.sha256)));
    expect(filesUnder(fixture.dataDir).filter((f) => f.startsWith("sandboxes"))).toEqual([]);
    expect(filesHolding(fixture.dataDir, [archive.subarray(0, 4096), Buffer.from("BUILT_BY")])).toEqual([]);
  });

  it("refuses an archive whose bytes on the XRootD server are not the sandbox's: the job fails with stagein before anything is unpacked or run", async () => {
    const fixture = await grid();
    const pilot = await pilotAtB(fixture);
    const bytes = await writeArchive(join(await tempDir(), "code.tar.gz"), [
      { header: { name: "run.sh" }, body: "echo ran > ran.txt\n" },
    ]);
    const sha256 = sha256Of(bytes);
    const put = await fetch(`${fixture.node.url}/sandboxes/${sha256}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${USER_TOKEN}` },
      body: bytes,
    });
    expect(put.status).toBe(201);
    // Someone with write access to the XRootD server swaps the archive for other bytes of the same size.
    const element = fixture.sandboxElement();
    const onDisk = join(fixture.servers["SITE-A"].exportDir, element.basePath, sandboxPath(sha256));
    const forged = Buffer.from(bytes);
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0xff;
    await writeFile(onDisk, forged);

    const taskId = "t-forged-sandbox";
    const submitted = await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId,
        jobs: 1,
        site: "SITE-B",
        payload: { command: ["sh", "run.sh"] },
        sandbox: { sha256, sizeBytes: bytes.length },
        retry: { maxAttempts: 1 },
      }),
    });
    expect(submitted.status).toBe(201);
    expect((await endedTask(fixture.node, taskId)).state).toBe("failed");
    const job = (await readContext(fixture.node.grid.ctx, "job", `${taskId}-0.1`))!;
    expect(job.state).toBe("failed");
    expect(job.context.error?.class).toBe("stagein");
    expect(job.context.error?.message).toMatch(
      new RegExp(
        `^sandbox ${sha256} refused: root://.*: received sha256:[0-9a-f]{64}, expected sha256:${sha256}`,
      ),
    );
    // The job directory goes once its log is uploaded; neither the archive nor a partial download is left.
    await until(async () => ((await readdir(pilot.workdir)).length === 0 ? true : undefined), 10_000);
  });
});
