import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { PandaUp, processesWith, readJsonIfComplete, runPanda, until } from "./panda-process.js";

interface LocalConfig {
  server: string;
  token: string;
}

interface TaskRow {
  taskId: string;
  state: string;
  type: string;
  jobCount: number;
}

const ENDED_TASK_STATES = ["done", "finished", "failed", "aborted"];

describe("panda up, and the client commands against it", () => {
  let workDir: string;
  let dataDir: string;
  let up: PandaUp;
  let config: LocalConfig;
  let bobToken = "";
  let beforeStop: Awaited<ReturnType<typeof listing>> | undefined;
  const restarts: PandaUp[] = [];

  async function tasks(): Promise<TaskRow[]> {
    const response = await fetch(`${config.server}/api/v1/tasks`, {
      headers: { authorization: `Bearer ${config.token}` },
    });
    return ((await response.json()) as { tasks: TaskRow[] }).tasks;
  }

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), "panda-cli-up-"));
    dataDir = join(workDir, ".panda");
    up = new PandaUp(["--port", "0", "--data-dir", dataDir, "--drain-seconds", "5"], workDir);
    config = (await until(
      () => readJsonIfComplete(join(dataDir, "local.json")),
      20_000,
      "panda up to write local.json",
    )) as LocalConfig;
  });

  afterAll(async () => {
    await up.stop();
    for (const restarted of restarts) await restarted.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  function printUpOutputOnFailure(): void {
    onTestFailed(() => {
      process.stderr.write(`--- panda up stdout ---\n${up.stdout}\n--- stderr ---\n${up.stderr}\n`);
    });
  }

  it("writes local.json (owner-only) and prints the monitor URL", async () => {
    printUpOutputOnFailure();
    expect(config.server).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(config.token.length).toBeGreaterThanOrEqual(16);
    expect(statSync(join(dataDir, "local.json")).mode & 0o777).toBe(0o600);
    await until(
      () => (up.stdout.includes(`monitor  ${config.server}/`) ? true : undefined),
      5_000,
      "the banner",
    );
    expect(up.stdout).not.toContain(config.token);
  });

  it("finishes the demo tasks; `panda jobs --json` lists every job finished", async () => {
    printUpOutputOnFailure();
    const ended = await until(
      async () => {
        const all = await tasks();
        return all.length === 2 && all.every((t) => ENDED_TASK_STATES.includes(t.state)) ? all : undefined;
      },
      40_000,
      "both demo tasks to end",
    );
    expect(ended.map((t) => t.state)).toEqual(["done", "done"]);
    expect(ended.map((t) => t.type).sort()).toEqual(["analysis", "production"]);
    const run = await runPanda(["jobs", "--json"], workDir);
    expect(run.code, run.stderr).toBe(0);
    const { jobs } = JSON.parse(run.stdout) as { jobs: { state: string; taskId: string }[] };
    expect(jobs).toHaveLength(ended.reduce((sum, t) => sum + t.jobCount, 0));
    expect(new Set(jobs.map((j) => j.state))).toEqual(new Set(["finished"]));
    expect(up.stdout).toMatch(/task \S+ done: 6\/6 jobs finished/);
  });

  it("`panda inspect job ID` shows the whole history, from defined to finished", async () => {
    printUpOutputOnFailure();
    const listed = await runPanda(["jobs", "--state", "finished", "--limit", "1", "--json"], workDir);
    const jobId = (JSON.parse(listed.stdout) as { jobs: { jobId: string }[] }).jobs[0]!.jobId;
    const json = await runPanda(["inspect", "job", jobId, "--json"], workDir);
    expect(json.code, json.stderr).toBe(0);
    const view = JSON.parse(json.stdout) as {
      state: string;
      history: { to: string; at: number; refused?: unknown }[];
    };
    expect(view.state).toBe("finished");
    // Top-level states, in order; a refused event changed nothing.
    const states = view.history.filter((e) => !e.refused).map((e) => e.to.split(".")[0]);
    expect(states[0]).toBe("defined");
    expect(states.at(-1)).toBe("finished");
    expect(states).toEqual(expect.arrayContaining(["activated", "sent", "starting", "running", "holding"]));
    const text = await runPanda(["inspect", "job", jobId], workDir);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("state: finished");
    expect(text.stdout).toContain(new Date(view.history[0]!.at).toISOString());
    const missing = await runPanda(["inspect", "job", `${jobId}-nope`], workDir);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("does not exist");
  });

  it("`panda submit` runs a task and prints its id; a bad token exits 3", async () => {
    printUpOutputOnFailure();
    const run = await runPanda(
      ["submit", "--type", "analysis", "--jobs", "2", "--", "sh", "-c", "echo hello {jobId}"],
      workDir,
    );
    expect(run.code, run.stderr).toBe(0);
    const taskId = run.stdout.trim();
    expect(taskId).toMatch(/^t-/);
    await until(
      async () => ((await tasks()).find((t) => t.taskId === taskId)?.state === "done" ? true : undefined),
      20_000,
      `task ${taskId} to be done`,
    );
    const refused = await runPanda(["submit", "--token", "not-the-right-token", "--", "true"], workDir);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("--token");
    expect(refused.stderr).not.toContain(config.token);
  });

  it("`panda token create` makes a token that works at once", async () => {
    printUpOutputOnFailure();
    const run = await runPanda(["token", "create", "--role", "user", "--user", "bob", "--json"], workDir);
    expect(run.code, run.stderr).toBe(0);
    bobToken = (JSON.parse(run.stdout) as { token: string }).token;
    expect(await whoami(config.server, bobToken)).toBe("bob");
    // Every task has ended: this is what a restart must bring back.
    beforeStop = await listing(config);
  });

  it("SIGTERM drains the pilots, closes the server and exits 0, leaving no pilot behind", async () => {
    printUpOutputOnFailure();
    const pilots = processesWith(" pilot ", dataDir);
    expect(pilots).toHaveLength(6);
    up.child.kill("SIGTERM");
    const exit = await up.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(up.stdout).toContain("stopped");
    expect(processesWith(" pilot ", dataDir)).toEqual([]);
  });

  it("brings the grid back on the same data directory, after a stop and after a SIGKILL; the demo is not sent again", async () => {
    printUpOutputOnFailure();
    const before = beforeStop!;
    expect(before.tasks.length).toBe(3);
    for (const stop of ["SIGTERM", "SIGKILL"] as const) {
      const again = await startUp(["--pilots-per-site", "0"]);
      try {
        expect(await listing(again.config)).toEqual(before);
        expect(await whoami(again.config.server, bobToken)).toBe("bob");
        await until(
          () => (again.up.stdout.includes("demo: not submitted") ? true : undefined),
          10_000,
          "the demo note",
        );
        expect(again.up.stdout).toMatch(/store {4}embedded, on disk in \S*state/);
      } finally {
        again.up.child.kill(stop);
        await again.up.exited;
      }
    }
  });

  it("--ephemeral starts empty, keeps its storage apart, and leaves the durable grid as it was", async () => {
    printUpOutputOnFailure();
    const durable = await startUp(["--pilots-per-site", "0"]);
    const before = await listing(durable.config);
    await durable.up.stop();
    const ephemeral = await startUp(["--pilots-per-site", "0", "--ephemeral", "--no-demo"]);
    try {
      expect((await listing(ephemeral.config)).tasks).toEqual([]);
      expect(ephemeral.up.stdout).toMatch(/store {4}embedded, in memory/);
      expect(existsSync(join(dataDir, "ephemeral", "storage"))).toBe(true);
    } finally {
      await ephemeral.up.stop();
    }
    expect(existsSync(join(dataDir, "ephemeral"))).toBe(false);
    const back = await startUp(["--pilots-per-site", "0"]);
    try {
      expect(await listing(back.config)).toEqual(before);
    } finally {
      await back.up.stop();
    }
  });

  /** Another `panda up` on the same data directory, once it has written its local.json. */
  async function startUp(args: string[]): Promise<{ up: PandaUp; config: LocalConfig }> {
    rmSync(join(dataDir, "local.json"), { force: true });
    const next = new PandaUp(["--port", "0", "--data-dir", dataDir, ...args], workDir);
    restarts.push(next);
    const nextConfig = (await until(
      () => readJsonIfComplete(join(dataDir, "local.json")),
      20_000,
      "panda up to write local.json",
    )) as LocalConfig;
    return { up: next, config: nextConfig };
  }
});

/** What a user would check is back: tasks with their states, every job's state, datasets and their files. */
async function listing(config: LocalConfig) {
  const read = async (path: string) =>
    (await (
      await fetch(`${config.server}${path}`, { headers: { authorization: `Bearer ${config.token}` } })
    ).json()) as Record<string, unknown>;
  const tasks = ((await read("/api/v1/tasks")).tasks as TaskRow[])
    .map((t) => `${t.taskId} ${t.state}`)
    .sort();
  const jobs = ((await read("/api/v1/jobs?limit=10000")).jobs as { jobId: string; state: string }[])
    .map((j) => `${j.jobId} ${j.state}`)
    .sort();
  const datasets = (
    (await read("/api/v1/datasets?pattern=*")).datasets as { name: string; fileCount: number }[]
  )
    .map((d) => `${d.name} ${d.fileCount}`)
    .sort();
  return { tasks, jobs, datasets };
}

async function whoami(server: string, token: string): Promise<string | undefined> {
  const res = await fetch(`${server}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { principal?: { user?: string } }).principal?.user;
}
