import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { Runtime } from "../../src/runtime/runtime.js";
import { readContext } from "../../src/workload/context.js";
import { until } from "../pilot/pilot-process.js";
import { connectTestPilot } from "../support/test-pilot-client.js";
import { pilotHello, pilotToken, submitTask, useGrid } from "./grid-fixture.js";

const grid = useGrid();

function taskDone(runtime: Runtime, taskId: string) {
  return runtime.waitForTransition({ kind: "task", id: taskId }, (t) => t.state?.status === "done");
}

describe("failures end to end", () => {
  it("fails a job whose pilot was SIGKILLed with lostHeartbeat after the grace, and the retry finishes on another pilot", async () => {
    const fixture = await grid(["SITE-L"]);
    const doomed = fixture.startPilot("SITE-L");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = "t-lost";
    const done = taskDone(fixture.node.grid.runtime, taskId);
    await submitTask(fixture.node, {
      taskId,
      jobs: 1,
      payload: { command: ["sleep", "1"] },
      watchdogs: { heartbeatTimeoutMs: 1500 },
      retry: { excludeFailingSite: false },
    });
    const first = `${taskId}-0.1`;
    await until(
      async () =>
        (await readContext(fixture.node.grid.ctx, "job", first))?.state === "running" ? true : undefined,
      20_000,
    );
    const lostPilot = (await readContext(fixture.node.grid.ctx, "job", first))!.context.pilot!.pilotId;
    doomed.signal("SIGKILL");
    await doomed.exited;
    fixture.startPilot("SITE-L");
    const end = await done;
    expect(end.state?.value).toBe("done");
    const failed = (await readContext(fixture.node.grid.ctx, "job", first))!;
    expect(failed.state).toBe("failed");
    expect(failed.context.error?.class).toBe("lostHeartbeat");
    const retryView = (await readContext(fixture.node.grid.ctx, "job", `${taskId}-0.2`))!;
    const retry = retryView.context as JobContext;
    expect(retryView.state).toBe("finished");
    expect(retry.pilot?.pilotId).not.toBe(lostPilot);
  });

  it("keeps a job through a cut socket: the pilot resumes and the job finishes without a retry", async () => {
    const fixture = await grid(["SITE-R"]);
    const pilot = fixture.startPilot("SITE-R");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = "t-cut";
    const done = taskDone(fixture.node.grid.runtime, taskId);
    await submitTask(fixture.node, {
      taskId,
      jobs: 1,
      payload: { command: ["sleep", "2"] },
      watchdogs: { heartbeatTimeoutMs: 5000 },
    });
    const jobId = `${taskId}-0.1`;
    await until(
      async () =>
        (await readContext(fixture.node.grid.ctx, "job", jobId))?.state === "running" ? true : undefined,
      20_000,
    );
    const pilotId = (await readContext(fixture.node.grid.ctx, "job", jobId))!.context.pilot!.pilotId;
    expect(fixture.node.gateway.terminate(pilotId, "test: cut the socket")).toBe(true);
    await until(
      () => (pilot.log.includes("resum") || fixture.node.gateway.session(pilotId) ? true : undefined),
      10_000,
    );
    const end = await done;
    expect(end.state?.value).toBe("done");
    const job = (await readContext(fixture.node.grid.ctx, "job", jobId))!;
    expect(job.state).toBe("finished");
    expect(job.context.pilot?.pilotId).toBe(pilotId);
    expect(await readContext(fixture.node.grid.ctx, "job", `${taskId}-0.2`)).toBeNull();
  });

  it("commits a beating job's heartbeats once per half timeout, and a silent one fails a whole timeout after its last", async () => {
    const fixture = await grid(["SITE-H"]);
    const runtime = fixture.node.grid.runtime;
    const pilot = await connectTestPilot(
      `${fixture.node.url}/pilot`,
      pilotToken("SITE-H"),
      pilotHello("SITE-H", "wn-beats"),
    );
    try {
      const timeoutMs = 2000;
      const ready = pilot.send({ type: "pilot.ready", thread: "primary" });
      expect(await pilot.acked()).toBe(ready);
      await submitTask(fixture.node, {
        taskId: "t-beats",
        jobs: 1,
        payload: { command: ["true"] },
        watchdogs: { heartbeatTimeoutMs: timeoutMs },
      });
      const { job } = await pilot.next("job.push");
      const ref = { kind: "job", id: job.jobId } as const;
      const running = runtime.waitForTransition(ref, (t) => t.state?.value === "running");
      const status = pilot.send({
        type: "job.status",
        jobId: job.jobId,
        attempt: job.attempt,
        state: "running",
      });
      expect(await pilot.acked()).toBe(status);
      await running;
      // A pilot beating every 100 ms or so, 30 times: each beat is answered.
      const beats = 30;
      const firstBeatMs = Date.now();
      let lastBeatMs = 0;
      for (let i = 0; i < beats; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        lastBeatMs = Date.now();
        const id = pilot.send({ type: "job.heartbeat", jobId: job.jobId, attempt: job.attempt });
        expect(await pilot.acked()).toBe(id);
      }
      const failed = runtime.waitForTransition(ref, (t) => t.state?.value === "failed");
      const committedBeats = (await runtime.inspect(ref))!.history.filter(
        (h) => (h.event as { type: string }).type === "pilot.heartbeat",
      );
      // The first beat at least half a timeout (1 s) after the last one committed: one per second or so.
      const halfTimeouts = Math.ceil((lastBeatMs - firstBeatMs) / (timeoutMs / 2));
      expect(committedBeats.length).toBeGreaterThanOrEqual(2);
      expect(committedBeats.length).toBeLessThanOrEqual(halfTimeouts + 1);
      expect(committedBeats.length).toBeLessThan(beats);
      expect((await readContext(fixture.node.grid.ctx, "job", job.jobId))?.state).toBe("running");

      // Silence: the watchdog counts from the last beat heard, as if every beat had been committed.
      const end = await failed;
      const ended = (await readContext(fixture.node.grid.ctx, "job", job.jobId))!.context as JobContext;
      expect(ended.error?.class).toBe("lostHeartbeat");
      expect(end.entry.at - lastBeatMs).toBeGreaterThanOrEqual(timeoutMs - 50);
      // A held beat committed late counts from when it was heard: the watchdog is not pushed back by the hold.
      expect(end.entry.at - lastBeatMs).toBeLessThan(timeoutMs + 1000);
    } finally {
      await pilot.close();
    }
  });

  it("answers a report about another pilot's job with NOT_YOUR_JOB, leaving that job and both sessions intact", async () => {
    const fixture = await grid(["SITE-O"]);
    const hello = (hostname: string) => pilotHello("SITE-O", hostname);
    const url = `${fixture.node.url}/pilot`;
    const owner = await connectTestPilot(url, pilotToken("SITE-O"), hello("wn-owner"));
    const intruder = await connectTestPilot(url, pilotToken("SITE-O"), hello("wn-intruder"));
    try {
      const taskId = "t-owned";
      const done = taskDone(fixture.node.grid.runtime, taskId);
      owner.send({ type: "pilot.ready", thread: "primary" });
      await submitTask(fixture.node, { taskId, jobs: 1, payload: { command: ["true"] } });
      const { job } = await owner.next("job.push");

      const report = intruder.send({
        type: "job.status",
        jobId: job.jobId,
        attempt: job.attempt,
        state: "running",
      });
      expect(await intruder.next("error")).toMatchObject({ code: "NOT_YOUR_JOB", ref: report });
      expect((await readContext(fixture.node.grid.ctx, "job", job.jobId))?.state).toBe("sent");
      // The intruder's session carries on: its next message is acknowledged.
      const ready = intruder.send({ type: "pilot.ready", thread: "primary" });
      expect(await intruder.acked()).toBe(ready);

      owner.send({ type: "job.ack", jobId: job.jobId, attempt: job.attempt });
      owner.send({
        type: "job.ended",
        jobId: job.jobId,
        attempt: job.attempt,
        outcome: "finished",
        exitCode: 0,
        outputs: [],
      });
      expect((await done).state?.context).toMatchObject({ counts: { finished: 1 } });
      expect((await readContext(fixture.node.grid.ctx, "job", job.jobId))?.context.pilot?.pilotId).toBe(
        owner.welcome.pilotId,
      );
    } finally {
      await Promise.all([owner.close(), intruder.close()]);
    }
  });
});
