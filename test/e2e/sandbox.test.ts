import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { afterEach, describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { TaskContext } from "../../src/actors/task/schema.js";
import type { ServerNode } from "../../src/server/server.js";
import { readContext } from "../../src/workload/context.js";
import { runPandaHere } from "../cli/in-process.js";
import { until } from "../pilot/pilot-process.js";
import { hostileArchives, type RawEntry, sha256Of, writeArchive } from "../sandbox/hostile-archives.js";
import { api, USER_TOKEN, useGrid } from "./grid-fixture.js";
import { endedTask, writeBuildableCode } from "./sandbox-helpers.js";

const grid = useGrid();
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "panda-e2e-sandbox-"));
  dirs.push(dir);
  return dir;
}

function taskEnded(node: ServerNode, taskId: string) {
  return node.grid.runtime.waitForTransition({ kind: "task", id: taskId }, (t) => t.state?.status === "done");
}

/** A user's analysis code: a script importing a module of its own, and build junk to leave out. */
async function analysisCode(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, "lib"));
  await writeFile(join(dir, "lib", "__init__.py"), "");
  await writeFile(
    join(dir, "lib", "greet.py"),
    "def greet(name):\n    return f'hello from the sandbox, {name}\\n'\n",
  );
  await writeFile(
    join(dir, "analysis.py"),
    "import sys\nfrom lib.greet import greet\nwith open(f'out-{sys.argv[1]}.txt', 'w') as f:\n    f.write(greet(sys.argv[1]))\n",
  );
  await writeFile(join(dir, "big-junk.pyc"), "x".repeat(10_000));
  return dir;
}

describe("sandboxes end to end, a real pilot unpacking them", () => {
  it("runs the user's Python script from the sandbox: its outputs are the script's; a second submit uploads nothing", async () => {
    const fixture = await grid(["SITE-S"]);
    fixture.startPilot("SITE-S");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const code = await analysisCode();
    const env = { PANDA_SERVER: fixture.node.url, PANDA_TOKEN: USER_TOKEN };
    const submit = () =>
      runPandaHere(
        [
          "submit",
          "--sandbox",
          code,
          "--exclude",
          "*.pyc",
          "--jobs",
          "2",
          "--output-file",
          "out-{jobId}.txt",
          "--json",
          "--",
          "python3",
          "analysis.py",
          "{jobId}",
        ],
        env,
      );
    const first = await submit();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/sandbox [0-9a-f]{16} \(\d+ bytes\) uploaded/);
    const taskId = (JSON.parse(first.stdout) as { taskId: string }).taskId;

    const task = await endedTask(fixture.node, taskId);
    expect(task.state).toBe("done");
    expect((task.context as TaskContext).counts.finished).toBe(2);
    const sandbox = (task.context as TaskContext).sandbox!;
    for (const index of [0, 1]) {
      const jobId = `${taskId}-${index}.1`;
      const job = (await readContext(fixture.node.grid.ctx, "job", jobId))!.context as JobContext;
      const storage = fixture.node.grid.ctx.storage.get(job.site!)!;
      expect(await text(await storage.get(`out-${jobId}.txt`))).toBe(`hello from the sandbox, ${jobId}\n`);
    }

    const second = await submit();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/already on the server/);
    const again = (JSON.parse(second.stdout) as { taskId: string }).taskId;
    expect((await readContext(fixture.node.grid.ctx, "task", again))?.context).toMatchObject({ sandbox });
    const listing = await runPandaHere(["sandbox", "ls", "--json"], env);
    expect(JSON.parse(listing.stdout)).toEqual([
      expect.objectContaining({
        sha256: sandbox.sha256,
        owners: ["alice"],
        tasks: expect.arrayContaining([taskId, again]),
      }),
    ]);
  });

  it("fails a job whose sandbox is hostile with a stagein error, and writes nothing outside the work directory", async () => {
    const fixture = await grid(["SITE-H"], { sandbox: { maxUnpackedBytes: 1000 } });
    const pilot = fixture.startPilot("SITE-H");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const outside = await tempDir();
    // `../canary` from a job directory lands in the pilot's workdir; absolute paths name `outside`.
    const canaries = [join(pilot.workdir, "canary"), join(outside, "canary")];
    const attacks = hostileArchives(join(outside, "canary"));
    const cases: Record<string, { entries: RawEntry[]; refusal: RegExp }> = {
      dotdot: attacks.dotdot!,
      absolute: attacks.absolute!,
      symlinkOut: attacks.symlinkOut!,
      hardlinkOut: attacks.hardlinkOut!,
      device: attacks.device!,
      oversize: {
        entries: [{ header: { name: "huge.bin" }, body: Buffer.alloc(2000) }],
        refusal: /unpacked size exceeds the limit of 1000 bytes/,
      },
    };
    const archives = await tempDir();
    const ended: Promise<unknown>[] = [];
    for (const [name, { entries }] of Object.entries(cases)) {
      const bytes = await writeArchive(join(archives, `${name}.tar.gz`), entries);
      const sha256 = sha256Of(bytes);
      const put = await fetch(`${fixture.node.url}/sandboxes/${sha256}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${USER_TOKEN}` },
        body: bytes,
      });
      expect(put.status).toBe(201);
      const taskId = `t-hostile-${name.toLowerCase()}`;
      ended.push(taskEnded(fixture.node, taskId));
      const submitted = await api(fixture.node, "/api/v1/tasks", {
        method: "POST",
        token: USER_TOKEN,
        body: JSON.stringify({
          taskId,
          jobs: 1,
          payload: { command: ["sh", "-c", "echo ran > ran.txt"] },
          sandbox: { sha256, sizeBytes: bytes.length },
          retry: { maxAttempts: 1 },
        }),
      });
      expect(submitted.status).toBe(201);
    }
    await Promise.all(ended);
    for (const [name, { refusal }] of Object.entries(cases)) {
      const job = (await readContext(fixture.node.grid.ctx, "job", `t-hostile-${name.toLowerCase()}-0.1`))!;
      expect(job.state, name).toBe("failed");
      expect(job.context.error?.class, name).toBe("stagein");
      expect(job.context.error?.message, name).toMatch(/sandbox [0-9a-f]{64} refused: /);
      expect(job.context.error?.message, name).toMatch(refusal);
    }
    for (const canary of canaries) expect(existsSync(canary), canary).toBe(false);
    // A job directory goes once its log is uploaded (just after the report); nothing else is left, not even an archive.
    await until(async () => ((await readdir(pilot.workdir)).length === 0 ? true : undefined), 10_000);
    expect(await readdir(outside)).toEqual([]);
  });

  it("--build: one build job per site the jobs go to; each site's jobs run in what its build made", async () => {
    const sites = ["SITE-B1", "SITE-B2"];
    const fixture = await grid(sites);
    for (const site of sites) fixture.startPilot(site);
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 2 ? true : undefined), 20_000);
    const code = await tempDir();
    // The build turns a template into the module the jobs import, and says which job built it.
    await writeBuildableCode(code);
    const jobs = 6;
    const submitted = await runPandaHere(
      [
        "submit",
        "--sandbox",
        code,
        "--build",
        "python3 build.py",
        "--jobs",
        String(jobs),
        "--output-file",
        "out-{jobId}.txt",
        "--json",
        "--",
        "python3",
        "run.py",
        "{jobId}",
      ],
      { PANDA_SERVER: fixture.node.url, PANDA_TOKEN: USER_TOKEN },
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    const taskId = (JSON.parse(submitted.stdout) as { taskId: string }).taskId;
    const task = await endedTask(fixture.node, taskId);
    expect(task.state).toBe("done");
    const builds = (task.context as TaskContext).build!.sites;
    const builtBy = new Map<string, string>();
    for (let index = 0; index < jobs; index++) {
      const jobId = `${taskId}-${index}.1`;
      const job = (await readContext(fixture.node.grid.ctx, "job", jobId))!.context as JobContext;
      const build = builds[job.site!]!;
      expect(build.state).toBe("built");
      expect(job.builtSandbox?.sha256).toBe(build.sandbox?.sha256);
      const storage = fixture.node.grid.ctx.storage.get(job.site!)!;
      // The module the job imported was made by its own site's build job.
      const output = await text(await storage.get(`out-${jobId}.txt`));
      expect(output).toBe(build.jobId);
      builtBy.set(job.site!, output);
    }
    // One build per site used, each at its site, each a job of the task after the run jobs.
    expect(Object.keys(builds).sort()).toEqual([...builtBy.keys()].sort());
    for (const [site, build] of Object.entries(builds)) {
      const job = await readContext(fixture.node.grid.ctx, "job", build.jobId);
      expect(job?.state).toBe("finished");
      expect(job?.context.site).toBe(site);
      expect(job?.context.index).toBeGreaterThanOrEqual(jobs);
    }
  });

  it("fails a site's jobs with a stagein error naming the build when the site's build fails", async () => {
    const fixture = await grid(["SITE-F"]);
    fixture.startPilot("SITE-F");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const archives = await tempDir();
    const bytes = await writeArchive(join(archives, "src.tar.gz"), [
      { header: { name: "main.c" }, body: "int main(\n" },
    ]);
    const sha256 = sha256Of(bytes);
    await fetch(`${fixture.node.url}/sandboxes/${sha256}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${USER_TOKEN}` },
      body: bytes,
    });
    const taskId = "t-build-fails";
    const ended = taskEnded(fixture.node, taskId);
    const submitted = await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId,
        jobs: 2,
        payload: { command: ["./a.out"] },
        sandbox: { sha256, sizeBytes: bytes.length },
        build: { command: ["sh", "-c", "echo 'main.c:1: syntax error' >&2; exit 3"] },
        retry: { maxAttempts: 1 },
      }),
    });
    expect(submitted.status).toBe(201);
    await ended;
    const task = (await readContext(fixture.node.grid.ctx, "task", taskId))!;
    expect(task.state).toBe("failed");
    const build = (task.context as TaskContext).build!.sites["SITE-F"]!;
    expect(build).toMatchObject({ state: "failed", jobId: `${taskId}-2.1` });
    expect((await readContext(fixture.node.grid.ctx, "job", build.jobId))?.context.error?.class).toBe(
      "payload",
    );
    for (const index of [0, 1]) {
      const job = (await readContext(fixture.node.grid.ctx, "job", `${taskId}-${index}.1`))!;
      expect(job.state).toBe("failed");
      expect(job.context.error).toMatchObject({ class: "stagein", code: "buildFailed" });
      expect(job.context.error?.message).toMatch(/^build at SITE-F failed: .*exit/);
    }
  });
});
