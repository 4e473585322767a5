import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type ServerNode, startServerNode } from "../../src/server/server.js";
import { readSite } from "../../src/workload/sites.js";
import { OPERATOR_TOKEN, SITES, STORES, USER_TOKEN, useApiGrid } from "../api/api-fixture.js";
import { PilotProcess, until } from "../pilot/pilot-process.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { pilotToken, api as rawApi, testSite } from "./grid-fixture.js";

const grid = useApiGrid();

// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
type Body = Record<string, any>;

async function api(...args: Parameters<typeof rawApi>): Promise<{ status: number; body: Body }> {
  return rawApi(...args);
}

function post(node: ServerNode, path: string, body: object, token = OPERATOR_TOKEN) {
  return api(node, path, { method: "POST", token, body: JSON.stringify(body) });
}

async function submit(node: ServerNode, body: object): Promise<void> {
  expect((await post(node, "/api/v1/tasks", body, USER_TOKEN)).status).toBe(201);
}

async function job(node: ServerNode, jobId: string): Promise<Body | undefined> {
  const { status, body } = await api(node, `/api/v1/jobs/${jobId}`);
  return status === 200 ? body : undefined;
}

/** Waits until the job is in `state` (at `site` when given) and answers its detail. */
async function jobReaches(node: ServerNode, jobId: string, state: string, site?: string): Promise<Body> {
  return until(async () => {
    const detail = await job(node, jobId);
    const view = detail?.job;
    return view?.state === state && (site === undefined || view.site === site) ? detail : undefined;
  }, 15_000);
}

function setStatus(node: ServerNode, site: string, status: string) {
  return post(node, `/api/v1/sites/${site}/status`, { status, reason: `test: ${status}` });
}

/** Leaves only `site` open to brokerage, so the first attempts go there. */
async function onlyOpen(node: ServerNode, site: string): Promise<void> {
  for (const other of SITES.filter((s) => s !== site))
    expect((await setStatus(node, other, "brokeroff")).status).toBe(200);
}

const payload = { command: ["true"] };

describe.each(STORES)("reassignment on the %s store", (store) => {
  it("is an operator's: a job or a task moves to the site named, with the reason in its history, failing nobody", async () => {
    const { node } = await grid(store);
    await onlyOpen(node, "SITE-A");
    await submit(node, { taskId: "t-re", jobs: 2, payload });
    await jobReaches(node, "t-re-0.1", "activated", "SITE-A");
    await jobReaches(node, "t-re-1.1", "activated", "SITE-A");
    await setStatus(node, "SITE-C", "online");

    const byUser = await post(node, "/api/v1/jobs/t-re-0.1/reassign", {}, USER_TOKEN);
    expect(byUser.status).toBe(403);
    expect(byUser.body.error.message).toMatch(/reassigning a job needs the operator or admin role/);
    const misspelt = await post(node, "/api/v1/jobs/t-re-0.1/reassign", { sites: "SITE-B" });
    expect(misspelt.status).toBe(400);
    expect(misspelt.body.error.message).toMatch(/sites/);
    const nowhere = await post(node, "/api/v1/jobs/t-re-0.1/reassign", { site: "SITE-Z" });
    expect(nowhere).toMatchObject({
      status: 404,
      body: { error: { message: "site SITE-Z does not exist" } },
    });
    expect((await post(node, "/api/v1/jobs/t-none-0.1/reassign", {})).status).toBe(404);
    // SITE-B is still brokeroff: a job sent there would only fail brokerage.
    const closedSite = await post(node, "/api/v1/jobs/t-re-0.1/reassign", { site: "SITE-B" });
    expect(closedSite).toMatchObject({
      status: 409,
      body: { error: { message: "site SITE-B is brokeroff: brokerage sends it no work" } },
    });
    expect((await setStatus(node, "SITE-B", "test")).status).toBe(200);
    const inTest = await post(node, "/api/v1/jobs/t-re-0.1/reassign", { site: "SITE-B" });
    expect(inTest.body.error.message).toBe("site SITE-B is in test: it takes test jobs only");
    expect((await setStatus(node, "SITE-B", "online")).status).toBe(200);

    const moved = await post(node, "/api/v1/jobs/t-re-0.1/reassign", { site: "SITE-B", reason: "disk slow" });
    expect(moved).toMatchObject({
      status: 200,
      body: { reassigned: [{ jobId: "t-re-0.1", nextJobId: "t-re-0.2" }], skipped: [] },
    });
    const closed = await jobReaches(node, "t-re-0.1", "closed");
    expect(closed.job.error).toEqual({
      class: "system",
      code: "reassigned",
      message: "reassigned by olga: disk slow",
    });
    expect(closed.history.at(-1)).toMatchObject({
      event: { type: "reassign", by: "olga", reason: "disk slow", site: "SITE-B" },
      to: "closed",
    });
    await jobReaches(node, "t-re-0.2", "activated", "SITE-B");
    const why = await api(node, "/api/v1/jobs/t-re-0.1/why");
    expect(why.body.failure.retry).toEqual({
      willRetry: true,
      why: "reassigned by olga: brokered again at SITE-B, nobody's failure",
      nextJobId: "t-re-0.2",
    });
    // Once closed, the attempt takes no second reassignment.
    expect((await post(node, "/api/v1/jobs/t-re-0.1/reassign", {})).status).toBe(409);

    const task = await post(node, "/api/v1/tasks/t-re/reassign", { site: "SITE-C" });
    expect(task.status).toBe(200);
    expect(task.body.reassigned).toEqual([
      { jobId: "t-re-0.2", nextJobId: "t-re-0.3" },
      { jobId: "t-re-1.1", nextJobId: "t-re-1.2" },
    ]);
    await jobReaches(node, "t-re-0.3", "activated", "SITE-C");
    await jobReaches(node, "t-re-1.2", "activated", "SITE-C");

    // Each attempt ended once, as closed; the logical jobs live on, and no one failed.
    const { body: taskBody } = await api(node, "/api/v1/tasks/t-re");
    expect(taskBody).toMatchObject({ state: "running" });
    const { body: closedJobs } = await api(node, "/api/v1/jobs?task=t-re&state=closed");
    expect(closedJobs.jobs.map((j: Body) => j.jobId).sort()).toEqual(["t-re-0.1", "t-re-0.2", "t-re-1.1"]);
    const siteA = await readSite(node.grid.ctx, "SITE-A");
    expect(siteA?.totals.closed).toBe(2);
    // Not in the window brokerage and black-hole detection judge the site by.
    expect(siteA?.outcomes).toEqual([]);
  });

  it("happens by itself to a job that waits activated at a site longer than the site's limit", async () => {
    const sites = SITES.map((name) =>
      name === "SITE-A" ? { ...testSite(name), thresholds: { reassignAfterMs: 1_000 } } : testSite(name),
    );
    // Looked for every 200 ms: the sweep of this node's queues finds it once it is older than a second.
    const { node } = await grid(store, { sites, grid: { staleSweepMs: 200 } });
    await onlyOpen(node, "SITE-A");
    await submit(node, { taskId: "t-wait", jobs: 1, payload });
    await jobReaches(node, "t-wait-0.1", "activated", "SITE-A");
    await setStatus(node, "SITE-B", "online");
    const closed = await jobReaches(node, "t-wait-0.1", "closed");
    expect(closed.job.error.message).toMatch(
      /reassigned by auto: waited activated at SITE-A longer than its limit of 1000 ms/,
    );
    const next = await jobReaches(node, "t-wait-0.2", "activated", "SITE-B");
    expect(next.context).toMatchObject({ excludedSites: ["SITE-A"], reassignments: 1 });
  });

  it("takes a site's queued jobs elsewhere when the site goes offline", async () => {
    const { node } = await grid(store);
    await onlyOpen(node, "SITE-A");
    await submit(node, { taskId: "t-off", jobs: 3, payload });
    for (const index of [0, 1, 2]) await jobReaches(node, `t-off-${index}.1`, "activated", "SITE-A");
    await setStatus(node, "SITE-B", "online");
    expect((await setStatus(node, "SITE-A", "offline")).status).toBe(200);
    for (const index of [0, 1, 2]) {
      const closed = await jobReaches(node, `t-off-${index}.1`, "closed");
      expect(closed.job.error.message).toBe("reassigned by auto: site SITE-A went offline");
      await jobReaches(node, `t-off-${index}.2`, "activated", "SITE-B");
    }
  });
});

describe("site status for dispatch, and drain", () => {
  it("an offline site hands its pilots nothing, even a job that reached its queue after it went offline", async () => {
    // A quota of one active job: the second job waits throttled, and comes back to the
    // site's queue (released) only when the first leaves, which going offline causes.
    const fixture = await grid("memory", { maxActiveJobsPerUser: 1 });
    const { node } = fixture;
    await submit(node, { taskId: "t-held", jobs: 2, payload, site: "SITE-A" });
    await jobReaches(node, "t-held-0.1", "activated", "SITE-A");
    await jobReaches(node, "t-held-1.1", "throttled", "SITE-A");
    expect((await setStatus(node, "SITE-A", "offline")).status).toBe(200);
    await jobReaches(node, "t-held-0.1", "closed");
    await jobReaches(node, "t-held-1.1", "activated", "SITE-A");
    fixture.startPilot("SITE-A");
    await until(() => (node.dispatcher.connectedPilots()[0]?.ready.length ? true : undefined), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await job(node, "t-held-1.1"))?.job.state).toBe("activated");
    // Back online, the waiting pilot takes it.
    expect((await setStatus(node, "SITE-A", "online")).status).toBe(200);
    await jobReaches(node, "t-held-1.1", "finished", "SITE-A");
  });

  it("a site in test hands its pilots test jobs only", async () => {
    const fixture = await grid("memory");
    const { node } = fixture;
    await onlyOpen(node, "SITE-A");
    await submit(node, { taskId: "t-prod", jobs: 1, payload });
    await jobReaches(node, "t-prod-0.1", "activated", "SITE-A");
    expect((await setStatus(node, "SITE-A", "test")).status).toBe(200);
    fixture.startPilot("SITE-A");
    await until(() => (node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    await submit(node, { taskId: "t-test", jobs: 1, payload, test: true, site: "SITE-A" });
    await jobReaches(node, "t-test-0.1", "finished", "SITE-A");
    // The pilot asked for work all along, and the production job was never handed to it.
    expect((await job(node, "t-prod-0.1"))?.job.state).toBe("activated");
  });

  it("drain tells the site's pilots to finish their work and exit; a running job cannot be reassigned", async () => {
    const fixture = await grid("memory");
    const { node } = fixture;
    const pilot = fixture.startPilot("SITE-A", ["--stay"]);
    await until(() => (node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    await submit(node, { taskId: "t-drain", jobs: 1, payload: { command: ["sleep", "2"] }, site: "SITE-A" });
    await jobReaches(node, "t-drain-0.1", "running");

    const running = await post(node, "/api/v1/jobs/t-drain-0.1/reassign", {});
    expect(running.status).toBe(409);
    expect(running.body.error.message).toMatch(/is running: only a job that is not running yet/);
    expect((await post(node, "/api/v1/sites/SITE-A/drain", {}, USER_TOKEN)).status).toBe(403);
    expect((await post(node, "/api/v1/sites/SITE-Z/drain", {})).status).toBe(404);
    const drained = await post(node, "/api/v1/sites/SITE-A/drain", { reason: "kernel update" });
    expect(drained).toMatchObject({ status: 200, body: { site: "SITE-A", pilotsTold: 1 } });

    // The pilot runs its job to the end, reports it, and leaves cleanly.
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect((await job(node, "t-drain-0.1"))?.job.state).toBe("finished");
    const { body: site } = await api(node, "/api/v1/sites/SITE-A");
    expect(site.lastDrain).toMatchObject({ by: "olga", reason: "kernel update" });
  });
});

describe("drain on a grid of two nodes", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function node(redisUrl: string, redisPrefix: string): Promise<ServerNode> {
    const dataDir = mkdtempSync(join(tmpdir(), "panda-drain-"));
    const started = await startServerNode({
      port: 0,
      dataDir,
      redisUrl,
      redisPrefix,
      leaseMs: 2000,
      sites: [testSite("SITE-A")],
      tokens: [
        { token: OPERATOR_TOKEN, kind: "user", user: "olga", role: "operator" },
        { token: pilotToken("SITE-A"), kind: "pilot", site: "SITE-A" },
      ],
    });
    cleanups.push(async () => {
      await started.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    return started;
  }

  it("reaches a pilot connected to the other node, through the site, when it next asks for work", async () => {
    const redisUrl = await getRedisUrl();
    const redisPrefix = uniquePrefix("drain");
    cleanups.push(async () => {
      const redis = new Redis(redisUrl);
      await cleanupPrefix(redis, redisPrefix);
      redis.disconnect();
    });
    const asked = await node(redisUrl, redisPrefix);
    const holding = await node(redisUrl, redisPrefix);
    const workdir = mkdtempSync(join(tmpdir(), "panda-drain-pilot-"));
    const pilot = new PilotProcess(
      ["--server", holding.url, "--site", "SITE-A", "--workdir", workdir, "--stay"],
      {
        ...process.env,
        PANDA_PILOT_TOKEN: pilotToken("SITE-A"),
      },
    );
    cleanups.push(async () => {
      await pilot.stop();
      rmSync(workdir, { recursive: true, force: true });
    });
    await until(() => (holding.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);

    const drained = await post(asked, "/api/v1/sites/SITE-A/drain", { reason: "downtime" });
    expect(drained).toMatchObject({ status: 200, body: { pilotsTold: 0 } });
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
  });
});
