import { describe, expect, it } from "vitest";
import type { ServerNode } from "../../src/server/server.js";
import { queueNames } from "../../src/store/queue-index.js";
import { connectTestPilot } from "../support/test-pilot-client.js";
import { pilotHello, pilotToken, submitTask, useGrid } from "./grid-fixture.js";

const grid = useGrid();

const hello = pilotHello;

describe("late binding", () => {
  for (const store of ["embedded", "Redis"] as const) {
    it(`binds a job to a thread that already waits in the job's own activation commit: it never queues (${store})`, async () => {
      const fixture = await grid(["SITE-Q"], {}, store);
      const { node } = fixture;
      const queued: string[] = [];
      node.grid.runtime.local.onChange((key, member, score) => {
        if (key.startsWith("site-queue:") && score !== null) queued.push(member);
      });
      const pilot = await connectTestPilot(`${node.url}/pilot`, pilotToken("SITE-Q"), hello("SITE-Q", "wn1"));
      pilot.send({ type: "pilot.ready", thread: "primary" });
      await pilot.next("ack");
      await submitTask(node, { taskId: "t-wait", jobs: 1, payload: { command: ["true"] } });
      const push = await pilot.next("job.push");
      expect(push.job.jobId).toBe("t-wait-0.1");
      const view = await node.grid.runtime.inspect({ kind: "job", id: "t-wait-0.1" });
      expect(view).toMatchObject({ state: "sent", context: { pilot: { pilotId: pilot.pilotId } } });
      // Brokered, activated and bound in one commit: the history shows them at consecutive versions.
      const tail = view!.history.slice(-2);
      expect(tail.map((h) => [h.event.type, h.to])).toEqual([
        ["brokered", "activated"],
        ["dispatch", "sent"],
      ]);
      expect(queued).toEqual([]);
      // The pilot's list holds the job from the same commit: a restarted server would welcome it back with it.
      expect(await node.grid.runtime.readIndex(queueNames.pilotJobs(pilot.pilotId), 0, 10)).toEqual([
        { member: "t-wait-0.1", score: 0 },
      ]);
      await pilot.close();
    });
  }

  /** The actor's transitions, grouped by the commit that made them (one `onTransitions` call per commit). */
  function commitsOf(node: ServerNode, actor: string): string[][] {
    const commits: string[][] = [];
    node.grid.runtime.onTransitions((transitions) => {
      const mine = transitions.filter((t) => t.actor === actor).map((t) => t.entry.event.type);
      if (mine.length > 0) commits.push(mine);
    });
    return commits;
  }

  for (const store of ["embedded", "Redis"] as const) {
    it(`brokers a job inline: its creation, brokerage, activation and binding are one commit (${store})`, async () => {
      const { node } = await grid(["SITE-I"], { grid: { siteStatsTtlMs: 60_000 } }, store);
      const pilot = await connectTestPilot(`${node.url}/pilot`, pilotToken("SITE-I"), hello("SITE-I", "wn1"));
      pilot.send({ type: "pilot.ready", thread: "primary" });
      await pilot.next("ack");
      const commits = commitsOf(node, "job/t-inline-0.1");
      await submitTask(node, { taskId: "t-inline", jobs: 1, payload: { command: ["true"] } });
      expect((await pilot.next("job.push")).job.jobId).toBe("t-inline-0.1");
      // No broker.request waited in the outbox for a brokerage service to answer after the commit.
      expect(commits).toEqual([["create", "brokered", "dispatch"]]);
      await pilot.close();
    });
  }

  it("brokers after the commit when brokerage reads the sites for every decision (siteStatsTtlMs 0)", async () => {
    const { node } = await grid(["SITE-D"], { grid: { siteStatsTtlMs: 0 } });
    const pilot = await connectTestPilot(`${node.url}/pilot`, pilotToken("SITE-D"), hello("SITE-D", "wn1"));
    pilot.send({ type: "pilot.ready", thread: "primary" });
    await pilot.next("ack");
    const commits = commitsOf(node, "job/t-durable-0.1");
    await submitTask(node, { taskId: "t-durable", jobs: 1, payload: { command: ["true"] } });
    expect((await pilot.next("job.push")).job.jobId).toBe("t-durable-0.1");
    expect(commits).toEqual([["create"], ["brokered", "dispatch"]]);
    await pilot.close();
  });

  it("sees a site's pilots and status change at once, within the sites' read's lifetime", async () => {
    // The sites are read at start, before any pilot: a job brokered from that read would find none.
    const { node } = await grid(["SITE-A", "SITE-B"], { grid: { siteStatsTtlMs: 60_000 } });
    const pilots = await Promise.all(
      ["SITE-A", "SITE-B"].map((site) =>
        connectTestPilot(`${node.url}/pilot`, pilotToken(site), hello(site, "wn")),
      ),
    );
    await node.grid.runtime.send(
      { kind: "site", id: "SITE-A" },
      { type: "setStatus", status: "offline", by: "operator", reason: "downtime" },
    );
    const brokered = new Map<string, string | null>();
    const allBrokered = new Promise<void>((resolve) => {
      node.grid.runtime.onTransitions((transitions) => {
        for (const t of transitions) {
          if (!t.actor.startsWith("job/t-after-") || t.entry.event.type !== "brokered") continue;
          brokered.set(t.actor, t.entry.event.site as string | null);
          if (brokered.size === 6) resolve();
        }
      });
    });
    await submitTask(node, { taskId: "t-after", jobs: 6, payload: { command: ["true"] } });
    await allBrokered;
    const sites = [...brokered.values()];
    expect(sites).toEqual(Array(6).fill("SITE-B"));
    for (const pilot of pilots) await pilot.close();
  });

  it("queues jobs no thread waits for, and a thread that asks later takes the highest priority first", async () => {
    const fixture = await grid(["SITE-P"]);
    const { node } = fixture;
    // Connected (brokerage sends work only where pilots are seen) but not asking for work yet.
    const pilot = await connectTestPilot(`${node.url}/pilot`, pilotToken("SITE-P"), hello("SITE-P", "wn2"));
    await submitTask(node, { taskId: "t-low", jobs: 2, priority: 10, payload: { command: ["true"] } });
    await submitTask(node, { taskId: "t-high", jobs: 1, priority: 500, payload: { command: ["true"] } });
    const queue = queueNames.siteQueue("SITE-P", "production", "default");
    const deadline = Date.now() + 10_000;
    while (node.grid.runtime.local.size(queue) < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await node.grid.runtime.readIndex(queue, 0, 10)).map((e) => e.member)).toEqual([
      "t-high-0.1",
      "t-low-0.1",
      "t-low-1.1",
    ]);
    pilot.send({ type: "pilot.ready", thread: "primary" });
    const push = await pilot.next("job.push");
    expect(push.job.jobId).toBe("t-high-0.1");
    // Admission control counts it served: it left the activated jobs, what a saturated node's intake is paced by.
    expect(node.grid.runtime.stats().intake?.served).toBe(1);
    // Dispatched: out of the queue by the same commit that bound it.
    expect((await node.grid.runtime.readIndex(queue, 0, 10)).map((e) => e.member)).toEqual([
      "t-low-0.1",
      "t-low-1.1",
    ]);
    await pilot.close();
  });
});
