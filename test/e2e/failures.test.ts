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
