import { describe, expect, it } from "vitest";
import { api, USER_TOKEN, useGrid } from "../e2e/grid-fixture.js";
import { until } from "../pilot/pilot-process.js";

const grid = useGrid();

describe("monitor API", () => {
  it("serves sites with pilots and queues, chart samples, job states and a job's log", async () => {
    const fixture = await grid(["SITE-M"], { monitorSampler: { everyMs: 100, capacity: 50 } });
    fixture.startPilot("SITE-M");
    await until(() => (fixture.node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const done = fixture.node.grid.runtime.waitForTransition(
      { kind: "task", id: "t-m" },
      (t) => t.state?.status === "done",
    );
    const submitted = await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        taskId: "t-m",
        jobs: 1,
        payload: { command: ["sh", "-c", "echo hello from the payload"] },
      }),
    });
    expect(submitted.status).toBe(201);
    await done;

    const { body: sites } = await api(fixture.node, "/api/v1/monitor/sites");
    const [site] = sites.sites as {
      name: string;
      pilots: unknown[];
      totals: { finished: number };
      starved: boolean;
    }[];
    expect(site).toMatchObject({ name: "SITE-M", totals: { finished: 1 }, starved: false });
    expect(site!.pilots).toHaveLength(1);

    await until(async () => {
      const { body } = await api(fixture.node, "/api/v1/monitor/series");
      return (body.samples as { finished: number }[]).some((s) => s.finished === 1) ? true : undefined;
    }, 5000);
    expect((await api(fixture.node, "/api/v1/monitor/job-states")).body.states).toContain("failed");

    const log = await fetch(`${fixture.node.url}/api/v1/monitor/jobs/t-m-0.1/log`);
    expect(log.status).toBe(200);
    expect(await log.text()).toContain("hello from the payload");
    const tail = await fetch(`${fixture.node.url}/api/v1/monitor/jobs/t-m-0.1/log?tail=8`);
    expect(await tail.text()).toHaveLength(8);
    expect(tail.headers.get("x-panda-truncated")).toBe("true");
    expect((await api(fixture.node, "/api/v1/monitor/jobs/nope-0.1/log")).status).toBe(404);
  });

  it("asks for a user token on every monitor read when the server requires one for reads", async () => {
    const fixture = await grid(["SITE-T"], { readRequiresToken: true });
    for (const path of ["/api/v1/monitor/sites", "/api/v1/monitor/series", "/api/v1/events"]) {
      expect((await fetch(`${fixture.node.url}${path}`)).status, path).toBe(401);
    }
    expect((await api(fixture.node, "/api/v1/monitor/sites", { token: USER_TOKEN })).status).toBe(200);
    const stream = await fetch(`${fixture.node.url}/api/v1/events`, {
      headers: { authorization: `Bearer ${USER_TOKEN}` },
    });
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    await stream.body?.cancel();
  });
});
