import { describe, expect, it } from "vitest";
import type { ServerNode } from "../../src/server/server.js";
import { queueNames } from "../../src/store/queue-index.js";
import { readContext } from "../../src/workload/context.js";
import { type ConnectedTestPilot, connectTestPilot } from "../support/test-pilot-client.js";
import { api, OTHER_USER_TOKEN, pilotHello, pilotToken, USER_TOKEN, useGrid } from "./grid-fixture.js";

const grid = useGrid();
const SITE = "SITE-F";
const PILOTS = 40;
const JOBS_PER_USER = 120;
const fairShare = {
  shares: [
    { name: "alice", percent: 70, match: { users: ["alice"] } },
    { name: "mallory", percent: 30, match: { users: ["mallory"] } },
  ],
};

function hello(hostname: string) {
  return pilotHello(SITE, hostname);
}

/** Resolves once `holds` is true of the node's queues, checked as each change lands (no polling). */
function queuesReach(node: ServerNode, holds: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (holds()) return resolve();
    const stop = node.grid.runtime.local.onChange(() => {
      if (!holds()) return;
      stop();
      resolve();
    });
  });
}

/** Resolves once the site has seen a pilot: brokerage sends work nowhere else, and backs off meanwhile. */
async function pilotsSeen(node: ServerNode): Promise<void> {
  let stop = () => {};
  const heard = new Promise<void>((resolve) => {
    stop = node.grid.runtime.onTransitions((transitions) => {
      if (transitions.some((t) => t.actor === `site/${SITE}` && t.entry.event.type === "pilot.seen"))
        resolve();
    });
  });
  const site = await readContext(node.grid.ctx, "site", SITE);
  if (site?.context.pilots.lastSeenAtMs == null) await heard;
  stop();
}

async function submitAs(node: ServerNode, token: string, taskId: string): Promise<void> {
  const body = { taskId, jobs: JOBS_PER_USER, payload: { command: ["true"] } };
  const res = await api(node, "/api/v1/tasks", { method: "POST", token, body: JSON.stringify(body) });
  expect(res.status).toBe(201);
}

/** The share of a pushed job, by its task: `t-alice-...` or `t-mallory-...`. */
function ownerOf(jobId: string): "alice" | "mallory" {
  return jobId.startsWith("t-alice-") ? "alice" : "mallory";
}

describe("fair share", () => {
  for (const store of ["embedded", "Redis"] as const) {
    it(`holds two users' shares of 70/30 of a saturated site's running slots (${store})`, async () => {
      // The backlog is the test's premise: brokerage's cap on a site's queue (20 while nothing runs) is lifted.
      const { node } = await grid([SITE], { grid: { fairShare, brokerage: { queueCapMin: 1000 } } }, store);
      const pilots: ConnectedTestPilot[] = [];
      try {
        // Connected first (brokerage sends work where pilots are seen), asking for nothing yet.
        for (let i = 0; i < PILOTS; i++)
          pilots.push(await connectTestPilot(`${node.url}/pilot`, pilotToken(SITE), hello(`wn${i}`)));
        const queued = () =>
          node.grid.runtime.local.size(queueNames.siteQueue(SITE, "production", "alice")) +
          node.grid.runtime.local.size(queueNames.siteQueue(SITE, "production", "mallory"));
        await pilotsSeen(node);
        const backlog = queuesReach(node, () => queued() === 2 * JOBS_PER_USER);
        // Alice's work is older: only the age picks favour it.
        await submitAs(node, USER_TOKEN, "t-alice");
        await submitAs(node, OTHER_USER_TOKEN, "t-mallory");
        await backlog;

        const holding = new Map<ConnectedTestPilot, { jobId: string; attempt: number }>();
        const take = async (pilot: ConnectedTestPilot) => {
          pilot.send({ type: "pilot.ready", thread: "primary" });
          const { job } = await pilot.next("job.push");
          holding.set(pilot, { jobId: job.jobId, attempt: job.attempt });
        };
        const running = () => {
          const counts = { alice: 0, mallory: 0 };
          for (const job of holding.values()) counts[ownerOf(job.jobId)]++;
          return counts;
        };
        const expectNear7030 = () => {
          const { alice, mallory } = running();
          expect(alice + mallory).toBe(PILOTS);
          expect(Math.abs(alice / PILOTS - 0.7)).toBeLessThanOrEqual(0.05);
          // The committed counters say the same as the pilots.
          expect(node.grid.runtime.local.counter(queueNames.shareRunning(SITE, "alice"))).toBe(alice);
          expect(node.grid.runtime.local.counter(queueNames.shareRunning(SITE, "mallory"))).toBe(mallory);
        };

        for (const pilot of pilots) await take(pilot);
        expectNear7030();
        // Two turnovers of every slot: each pilot ends its job and takes the next.
        for (let round = 0; round < 2; round++) {
          for (const pilot of pilots) {
            const job = holding.get(pilot)!;
            pilot.send({ type: "job.ended", ...job, outcome: "finished", exitCode: 0, outputs: [] });
            await take(pilot);
          }
          expectNear7030();
        }

        // Operators see target beside actual.
        const site = await api(node, `/api/v1/sites/${SITE}`);
        const { alice, mallory } = running();
        expect(site.body.shares).toEqual([
          {
            name: "alice",
            targetPercent: 70,
            running: alice,
            runningPercent: Math.round((alice / PILOTS) * 1000) / 10,
            queued: expect.any(Number),
          },
          {
            name: "mallory",
            targetPercent: 30,
            running: mallory,
            runningPercent: Math.round((mallory / PILOTS) * 1000) / 10,
            queued: expect.any(Number),
          },
        ]);
      } finally {
        await Promise.all(pilots.map((p) => p.close()));
      }
    }, 60_000);
  }

  for (const store of ["embedded", "Redis"] as const) {
    it(`lowers an analysis job's priority one point per 5 active jobs of its user, when brokered (${store})`, async () => {
      const { node } = await grid([SITE], {}, store);
      // Connected (brokerage sends work where pilots are seen), asking for nothing: every job queues.
      const pilot = await connectTestPilot(`${node.url}/pilot`, pilotToken(SITE), hello("wn0"));
      try {
        await pilotsSeen(node);
        const lane = queueNames.siteQueue(SITE, "analysis", "default");
        const size = () => node.grid.runtime.local.size(lane);
        const analysis = (taskId: string, jobs: number) =>
          JSON.stringify({ taskId, jobs, type: "analysis", payload: { command: ["true"] } });
        const first = queuesReach(node, () => size() === 10);
        await api(node, "/api/v1/tasks", {
          method: "POST",
          token: USER_TOKEN,
          body: analysis("t-flood", 10),
        });
        await first;
        const more = queuesReach(node, () => size() === 12);
        await api(node, "/api/v1/tasks", { method: "POST", token: USER_TOKEN, body: analysis("t-more", 1) });
        await api(node, "/api/v1/tasks", {
          method: "POST",
          token: OTHER_USER_TOKEN,
          body: analysis("t-few", 1),
        });
        await more;
        const job = (id: string) => node.grid.runtime.inspect({ kind: "job", id });
        // Alice had 10 active jobs: 100 - 10/5; Mallory none, so hers keeps its own priority.
        expect((await job("t-more-0.1"))?.context).toMatchObject({ priority: 100, currentPriority: 98 });
        expect((await job("t-few-0.1"))?.context).toMatchObject({ priority: 100, currentPriority: null });
        const rank = (id: string) => node.grid.runtime.local.rank(lane, id)!;
        expect(rank("t-few-0.1")).toBeLessThan(rank("t-more-0.1"));
      } finally {
        await pilot.close();
      }
    });
  }
});
