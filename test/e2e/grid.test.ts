import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { readContext } from "../../src/workload/context.js";
import { isAlive, payloadPid, until } from "../pilot/pilot-process.js";
import { api, type GridFixture, OTHER_USER_TOKEN, USER_TOKEN, useGrid } from "./grid-fixture.js";

const grid = useGrid();

/** The states a job that runs and uploads an output passes, in order. */
const LIFECYCLE = ["defined", "activated", "sent", "starting", "running", "holding", "finished"] as const;

/** Whether any live (not zombie) process of a process group is left: none may outlive a kill. */
function groupAlive(pgid: number): boolean {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // Fields after the command name: state, ppid, pgrp, ...
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

function taskDone(fixture: GridFixture, taskId: string) {
  return fixture.node.grid.runtime.waitForTransition(
    { kind: "task", id: taskId },
    (t) => t.state?.status === "done",
  );
}

/** Top-level states in the order a job passed them, from its history. */
function pathOf(history: { to: string; refused?: unknown }[]): string[] {
  const states: string[] = [];
  for (const entry of history) {
    if (entry.refused) continue;
    const top = entry.to.split(".")[0]!;
    if (states.at(-1) !== top) states.push(top);
  }
  return states;
}

describe("grid end to end, real pilots and payloads", () => {
  it.each(["embedded", "Redis"] as const)(
    "finishes a 50-job task over two sites on the %s store; every job's history is the full lifecycle",
    async (store) => {
      const fixture = await grid(["SITE-A", "SITE-B"], {}, store);
      for (const site of ["SITE-A", "SITE-B"]) {
        fixture.startPilot(site);
        fixture.startPilot(site);
      }
      await until(() => (fixture.node.dispatcher.connectedPilots().length === 4 ? true : undefined), 20_000);
      const taskId = "t-e2e-50";
      const done = taskDone(fixture, taskId);
      const submitted = await api(fixture.node, "/api/v1/tasks", {
        method: "POST",
        token: USER_TOKEN,
        body: JSON.stringify({
          taskId,
          jobs: 50,
          type: "production",
          payload: { command: ["sh", "-c", "echo {jobId} > out-{jobId}.txt"], outputs: ["out-{jobId}.txt"] },
        }),
      });
      expect(submitted).toMatchObject({ status: 201, body: { taskId, jobs: 50 } });
      const end = await done;
      expect(end.state?.value).toBe("done");
      expect((end.state?.context as TaskContext | undefined)?.counts.finished).toBe(50);
      const sites = new Set<string>();
      for (let i = 0; i < 50; i++) {
        const view = await fixture.node.grid.runtime.inspect({ kind: "job", id: `${taskId}-${i}.1` });
        const job = view!.context as JobContext;
        sites.add(job.site!);
        expect(pathOf(view!.history)).toEqual([...LIFECYCLE]);
        for (const state of LIFECYCLE) {
          expect(job.timestamps[state], `${job.jobId} ${state}`).toBeTypeOf("number");
        }
        // The payload really ran and its output was uploaded to the site's storage.
        const stored = await fixture.node.grid.ctx.storage.get(job.site!)!.stat(`out-${job.jobId}.txt`);
        expect(stored?.sizeBytes).toBe(`${job.jobId}\n`.length);
      }
      expect([...sites].sort()).toEqual(["SITE-A", "SITE-B"]);
    },
  );

  it("runs short analysis jobs on the secondary thread while the primary runs, then the pilot exits", async () => {
    const fixture = await grid(["SITE-M"]);
    const pilot = fixture.startPilot("SITE-M", ["--multitask"]);
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const prod = "t-prod";
    const prodDone = taskDone(fixture, prod);
    await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId: prod,
        jobs: 1,
        type: "production",
        payload: { command: ["sleep", "5"] },
      }),
    });
    await until(async () => {
      const job = await readContext(fixture.node.grid.ctx, "job", `${prod}-0.1`);
      return job?.state === "running" ? true : undefined;
    }, 20_000);
    const analysis = "t-ana";
    const anaDone = taskDone(fixture, analysis);
    await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId: analysis,
        jobs: 3,
        type: "analysis",
        resources: { walltimeSec: 60 },
        payload: { command: ["sh", "-c", "sleep 0.2"] },
      }),
    });
    await anaDone;
    const prodJob = await readContext(fixture.node.grid.ctx, "job", `${prod}-0.1`);
    expect(prodJob?.state).toBe("running");
    for (let i = 0; i < 3; i++) {
      const view = (await readContext(fixture.node.grid.ctx, "job", `${analysis}-${i}.1`))!;
      const job = view.context;
      expect(view.state).toBe("finished");
      expect(job.pilot).toEqual({ pilotId: prodJob!.context.pilot!.pilotId, thread: "secondary" });
      expect(job.timestamps.finished!).toBeLessThan(Date.now());
    }
    await prodDone;
    const finishedProd = (await readContext(fixture.node.grid.ctx, "job", `${prod}-0.1`))!.context;
    for (let i = 0; i < 3; i++) {
      const job = (await readContext(fixture.node.grid.ctx, "job", `${analysis}-${i}.1`))!.context;
      expect(job.timestamps.finished!).toBeLessThan(finishedProd.timestamps.running! + 5000);
      expect(job.timestamps.starting!).toBeGreaterThan(finishedProd.timestamps.running!);
    }
    expect((await pilot.exited).code).toBe(0);
  });

  it("kills a running payload's process group within a second; the job ends cancelled", async () => {
    const fixture = await grid(["SITE-K"]);
    const pilot = fixture.startPilot("SITE-K");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = "t-kill";
    await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId,
        jobs: 1,
        payload: { command: ["sh", "-c", "echo $$ > pid; sleep 600 & wait"] },
      }),
    });
    const jobId = `${taskId}-0.1`;
    await until(
      async () =>
        (await readContext(fixture.node.grid.ctx, "job", jobId))?.state === "running" ? true : undefined,
      20_000,
    );
    // The payload's shell leads its own process group; its pid is the group id.
    const pgid = await payloadPid(pilot.workdir, jobId);
    expect(groupAlive(pgid)).toBe(true);
    // Another user may not kill it; the owner may.
    expect(
      (await api(fixture.node, `/api/v1/jobs/${jobId}/kill`, { method: "POST", token: OTHER_USER_TOKEN }))
        .status,
    ).toBe(403);
    const killedAt = Date.now();
    expect(
      (await api(fixture.node, `/api/v1/jobs/${jobId}/kill`, { method: "POST", token: USER_TOKEN })).status,
    ).toBe(200);
    expect((await readContext(fixture.node.grid.ctx, "job", jobId))?.state).toBe("cancelled");
    await until(() => (groupAlive(pgid) ? undefined : true), 1000);
    expect(Date.now() - killedAt).toBeLessThan(1500);
    expect(isAlive(pgid)).toBe(false);
    await until(() => (pilot.log.includes("cancelled") ? true : undefined), 5000);
  });
});
