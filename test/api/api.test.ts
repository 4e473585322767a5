import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TaskContext } from "../../src/actors/task/schema.js";
import type { ServerNode } from "../../src/server/server.js";
import { pilotToken, api as rawApi } from "../e2e/grid-fixture.js";
import { until } from "../pilot/pilot-process.js";
import {
  ADMIN_TOKEN,
  OPERATOR_TOKEN,
  OTHER_USER_TOKEN,
  STORES,
  USER_TOKEN,
  useApiGrid,
} from "./api-fixture.js";

const grid = useApiGrid();

// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
type Body = Record<string, any>;

/** The fixture's API call with a body the assertions can walk. */
async function api(...args: Parameters<typeof rawApi>): Promise<{ status: number; body: Body }> {
  return rawApi(...args);
}

function submit(node: ServerNode, body: object, token = USER_TOKEN) {
  return api(node, "/api/v1/tasks", { method: "POST", token, body: JSON.stringify(body) });
}

async function jobsIn(node: ServerNode, query: string): Promise<Body[]> {
  const { status, body } = await api(node, `/api/v1/jobs?${query}`);
  expect(status).toBe(200);
  return body.jobs as Body[];
}

/** Waits until every job of the task is in `state`. */
async function allJobsIn(node: ServerNode, taskId: string, count: number, state: string) {
  await until(
    async () => ((await jobsIn(node, `task=${taskId}&state=${state}`)).length === count ? true : undefined),
    15_000,
  );
}

async function putFile(node: ServerNode, dataset: string, site: string, lfn: string, text: string) {
  const res = await fetch(
    `${node.url}/api/v1/datasets/${encodeURIComponent(dataset)}/files?site=${site}&lfn=${encodeURIComponent(lfn)}`,
    { method: "POST", headers: { authorization: `Bearer ${USER_TOKEN}` }, body: text },
  );
  expect(res.status).toBe(201);
}

async function metricValue(node: ServerNode, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{${labels}}`) || (labels === "" && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const payload = { command: ["true"] };

describe.each(STORES)("HTTP API on the %s store", (store) => {
  it("authenticates and authorizes: 401 without a token, 403 for another user's job, operators kill anything", async () => {
    const { node } = await grid(store);
    expect((await submit(node, { jobs: 1, payload }, "")).status).toBe(401);
    expect((await submit(node, { jobs: 1, payload }, "not-a-known-token-at-all")).status).toBe(401);
    expect((await submit(node, { jobs: 1, payload }, pilotToken("SITE-A"))).status).toBe(403);
    const submitted = await submit(node, { taskId: "t-auth", jobs: 2, payload });
    expect(submitted).toMatchObject({ status: 201, body: { taskId: "t-auth", jobs: 2 } });
    await allJobsIn(node, "t-auth", 2, "activated");
    const kill = (jobId: string, token: string) =>
      api(node, `/api/v1/jobs/${jobId}/kill`, { method: "POST", token, body: "{}" });
    const foreign = await kill("t-auth-0.1", OTHER_USER_TOKEN);
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatchObject({
      code: "FORBIDDEN",
      message: expect.stringMatching(/belongs to alice/),
    });
    expect((await kill("t-auth-0.1", "")).status).toBe(401);
    expect((await kill("t-auth-0.1", USER_TOKEN)).status).toBe(200);
    expect((await kill("t-auth-1.1", OPERATOR_TOKEN)).status).toBe(200);
    await allJobsIn(node, "t-auth", 2, "cancelled");
    expect((await kill("t-nope-0.1", OPERATOR_TOKEN)).status).toBe(404);
    // Site status: operators only, and the change is visible in the site list.
    const setStatus = (token: string, body: object) =>
      api(node, "/api/v1/sites/SITE-C/status", { method: "POST", token, body: JSON.stringify(body) });
    expect((await setStatus(USER_TOKEN, { status: "offline", reason: "x" })).status).toBe(403);
    expect((await setStatus(OPERATOR_TOKEN, { status: "offline", reason: "downtime" })).status).toBe(200);
    const sites = (await api(node, "/api/v1/sites")).body.sites as Body[];
    expect(sites.find((s) => s.name === "SITE-C")).toMatchObject({
      status: "offline",
      statusInfo: { by: "olga" },
    });
    // Task kill: only the owner or an operator.
    await submit(node, { taskId: "t-auth2", jobs: 1, payload });
    const killTask = (token: string) =>
      api(node, "/api/v1/tasks/t-auth2/kill", {
        method: "POST",
        token,
        body: JSON.stringify({ reason: "enough" }),
      });
    expect((await killTask(OTHER_USER_TOKEN)).status).toBe(403);
    expect((await killTask(USER_TOKEN)).status).toBe(200);
  });

  it("answers 400 naming the bad field, 404 and 405", async () => {
    const { node } = await grid(store);
    const bad = await submit(node, { jobs: 0, payload });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/jobs/);
    const badState = await api(node, "/api/v1/jobs?state=bogus");
    expect(badState.status).toBe(400);
    expect(badState.body.error).toMatchObject({
      code: "BAD_QUERY",
      details: { issues: [{ path: "state" }] },
    });
    expect((await api(node, "/api/v1/jobs?limit=0")).body.error.message).toMatch(/limit/);
    const badStatus = await api(node, "/api/v1/sites/SITE-A/status", {
      method: "POST",
      token: OPERATOR_TOKEN,
      body: JSON.stringify({ status: "closed", reason: "" }),
    });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.message).toMatch(/status/);
    expect(badStatus.body.error.message).toMatch(/reason/);
    const malformed = await api(node, "/api/v1/tasks", { method: "POST", token: USER_TOKEN, body: "{" });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: "MALFORMED" } } });
    expect((await api(node, "/api/v1/tasks/t-none")).status).toBe(404);
    expect((await api(node, "/api/v1/nothing")).status).toBe(404);
    expect((await api(node, "/api/v1/sites", { method: "DELETE", token: ADMIN_TOKEN })).status).toBe(405);
    expect((await api(node, "/api/v1/actors/nokind/x")).status).toBe(404);
  });

  it("answers 413 to a control request's body over its limit, while a task submission may be larger", async () => {
    const { node } = await grid(store);
    const huge = await api(node, "/api/v1/sites/SITE-A/status", {
      method: "POST",
      token: OPERATOR_TOKEN,
      body: JSON.stringify({ status: "offline", reason: "x".repeat(70 * 1024) }),
    });
    expect(huge).toMatchObject({ status: 413, body: { error: { code: "TOO_LARGE" } } });
    expect(huge.body.error.message).toMatch(/limit of 65536/);
    expect((await api(node, "/api/v1/sites/SITE-A")).body.status).toBe("online");
    const bigTask = await submit(node, {
      jobs: 1,
      payload: { ...payload, env: { NOTE: "x".repeat(70 * 1024) } },
    });
    expect(bigTask.status).toBe(201);
  });

  it("lists, filters and pages jobs and tasks; job detail has context, history and brokerage reasons", async () => {
    const { node } = await grid(store);
    await submit(node, { taskId: "t-list-a", jobs: 3, payload, site: "SITE-B" });
    await submit(node, { taskId: "t-list-b", jobs: 2, payload }, OTHER_USER_TOKEN);
    await allJobsIn(node, "t-list-a", 3, "activated");
    await allJobsIn(node, "t-list-b", 2, "activated");
    expect((await jobsIn(node, "user=mallory")).map((j) => j.taskId)).toEqual(["t-list-b", "t-list-b"]);
    expect((await jobsIn(node, "site=SITE-B&task=t-list-a")).length).toBe(3);
    expect(await jobsIn(node, "state=running")).toEqual([]);
    expect((await jobsIn(node, "state=activated&site=SITE-B")).map((j) => j.taskId)).toContain("t-list-a");
    expect((await jobsIn(node, `since=${Date.now() - 60_000}&until=${Date.now() + 1000}`)).length).toBe(5);
    expect(await jobsIn(node, `since=${Date.now() + 60_000}`)).toEqual([]);
    const page1 = (await api(node, "/api/v1/jobs?limit=2")).body;
    const page2 = (await api(node, `/api/v1/jobs?limit=2&offset=${page1.nextOffset}`)).body;
    const page3 = (await api(node, `/api/v1/jobs?limit=2&offset=${page2.nextOffset}`)).body;
    expect(page3.nextOffset).toBeNull();
    const ids = [...page1.jobs, ...page2.jobs, ...page3.jobs].map((j: Body) => j.jobId);
    expect(new Set(ids).size).toBe(5);
    const tasks = (await api(node, "/api/v1/tasks?user=alice")).body.tasks as Body[];
    expect(tasks.map((t) => t.taskId)).toEqual(["t-list-a"]);
    const task = (await api(node, "/api/v1/tasks/t-list-a")).body;
    expect(task).toMatchObject({
      taskId: "t-list-a",
      jobCount: 3,
      progress: { endedJobs: 0, percentEnded: 0 },
    });
    const detail = (await api(node, "/api/v1/jobs/t-list-b-0.1")).body;
    expect(detail.job).toMatchObject({ jobId: "t-list-b-0.1", state: "activated", user: "mallory" });
    expect(detail.context).toMatchObject({ taskId: "t-list-b" });
    expect(detail.history.map((h: Body) => h.event.type)).toContain("brokered");
    expect(detail.brokerage.candidates.length).toBe(3);
  });

  it("retries a task's failed jobs as a new task", async () => {
    const { node } = await grid(store);
    // No site has this much memory: brokerage gives up after one try and the job fails.
    await submit(node, {
      taskId: "t-fail",
      jobs: 2,
      payload,
      resources: { memoryMb: 1_000_000 },
      watchdogs: { maxBrokerageTries: 1 },
      retry: { maxAttempts: 1 },
    });
    await until(
      async () => ((await api(node, "/api/v1/tasks/t-fail")).body.state === "failed" ? true : undefined),
      15_000,
    );
    expect(
      (await api(node, "/api/v1/tasks/t-fail/retry", { method: "POST", token: OTHER_USER_TOKEN })).status,
    ).toBe(403);
    const retried = await api(node, "/api/v1/tasks/t-fail/retry", { method: "POST", token: USER_TOKEN });
    expect(retried).toMatchObject({
      status: 201,
      body: { taskId: "t-fail.r1", retriedFrom: "t-fail", jobs: 2, indexes: [0, 1] },
    });
    expect((await api(node, "/api/v1/tasks/t-fail.r1")).body).toMatchObject({ user: "alice", jobCount: 2 });
    const why = (await api(node, "/api/v1/jobs/t-fail-0.1/why")).body;
    expect(why.failure).toMatchObject({ errorClass: "brokerage", retry: { willRetry: false } });
    expect(why.brokerage.candidates.every((c: Body) => /memory/.test(c.lostBecause))).toBe(true);
  });

  it("explains a brokered job (winner, losers and reasons) and an assigned one (the awaited subscription)", async () => {
    const { node, dataDir } = await grid(store, {
      grid: { transfer: { retryBaseDelayMs: 60_000, maxAttempts: 5 } },
    });
    const brokered = await submit(node, {
      taskId: "t-why",
      jobs: 1,
      payload,
      resources: { walltimeSec: 100 },
    });
    expect(brokered.status).toBe(201);
    await allJobsIn(node, "t-why", 1, "activated");
    const why = (await api(node, "/api/v1/jobs/t-why-0.1/why")).body;
    expect(why.brokerage.chosenSite).toBe(why.site);
    const losers = (why.brokerage.candidates as Body[]).filter((c) => c.lostBecause);
    expect(losers.length).toBe(2);
    // Three eligible sites, drawn among by weight: each has its weight and chance, the chances sum to 1.
    expect(why.brokerage.pickedBy).toEqual({ kind: "draw", among: 3 });
    for (const loser of losers)
      expect(loser.lostBecause).toMatch(/^not drawn \(weight \S+, chance [\d.]+% of being drawn\)$/);
    const chances = (why.brokerage.candidates as Body[]).map((c) => (c.draw as { chance: number }).chance);
    expect(chances.reduce((sum, c) => sum + c, 0)).toBeCloseTo(1);
    expect(why.waitingFor.queue).toMatchObject({ site: why.site, position: 1, length: 1 });
    // Inputs only at SITE-A, the job pinned to SITE-B, and the source file gone: the transfer waits to retry.
    await putFile(node, "mc11.123.RDO.v1", "SITE-A", "f1.root", "data-1");
    rmSync(join(dataDir, "storage", "SITE-A", "f1.root"));
    await submit(node, { taskId: "t-why2", input: { dataset: "mc11.123.RDO.v1" }, payload, site: "SITE-B" });
    await allJobsIn(node, "t-why2", 1, "assigned");
    const waiting = (await api(node, "/api/v1/jobs/t-why2-0.1/why")).body;
    expect(waiting.waitingFor.subscription).toMatchObject({
      id: "dis.t-why2-0.1@SITE-B",
      pendingFiles: ["f1.root"],
    });
    expect(waiting.summary.join("\n")).toMatch(/waits for subscription dis\.t-why2-0\.1@SITE-B/);
    const losing = (waiting.brokerage.candidates as Body[]).filter((c) => c.lostBecause);
    expect(losing.map((c) => c.lostBecause).join()).toMatch(/requestedSite/);
  });

  it("serves actors now and at a past time, sites, pilots and the summary", async () => {
    const { node } = await grid(store);
    await submit(node, { taskId: "t-at", jobs: 1, payload });
    await allJobsIn(node, "t-at", 1, "activated");
    await api(node, "/api/v1/jobs/t-at-0.1/kill", { method: "POST", token: USER_TOKEN, body: "{}" });
    await allJobsIn(node, "t-at", 1, "cancelled");
    const now = (await api(node, "/api/v1/actors/job/t-at-0.1")).body;
    expect(now.state).toBe("cancelled");
    const history = (now.history as Body[]).filter((h) => !h.refused);
    const activatedAt = history.find((h) => String(h.to).startsWith("activated"))!.at as number;
    const past = (await api(node, `/api/v1/actors/job/t-at-0.1?at=${activatedAt}`)).body;
    expect(past).toMatchObject({ state: "activated", at: activatedAt });
    expect((await api(node, `/api/v1/actors/job/t-at-0.1?at=${history[0]!.at - 1}`)).status).toBe(404);
    expect((await api(node, "/api/v1/actors/site/SITE-A")).body).toMatchObject({
      kind: "site",
      state: "online",
    });
    const sites = (await api(node, "/api/v1/sites")).body.sites as Body[];
    expect(sites.map((s) => s.name).sort()).toEqual(["SITE-A", "SITE-B", "SITE-C"]);
    expect(sites[0]).toHaveProperty("pilots.requestsPerMin");
    const site = (await api(node, "/api/v1/sites/SITE-A")).body;
    expect(site).toMatchObject({ name: "SITE-A", status: "online", incidents: [] });
    expect((await api(node, "/api/v1/sites/NOWHERE")).status).toBe(404);
    const pilots = (await api(node, "/api/v1/pilots")).body;
    expect(pilots).toMatchObject({ pilots: [], sites: [] });
    const summary = (await api(node, "/api/v1/summary?windowMs=600000")).body;
    expect(summary.sites.length).toBe(3);
    expect(summary.total.failurePercent).toEqual({ total: 0, transfer: 0, other: 0 });
    expect((await api(node, "/api/v1/summary?windowMs=-1")).status).toBe(400);
  });

  it("finds datasets by wildcard, shows files and replicas, subscribes a site", async () => {
    const { node } = await grid(store);
    await putFile(node, "mc11.777.RDO.v1", "SITE-A", "a.root", "aaa");
    await putFile(node, "mc11.777.RDO.v1", "SITE-A", "b.root", "bbbb");
    await putFile(node, "mc11.777.AOD.v1", "SITE-A", "c.root", "c");
    await putFile(node, "data12.1.RAW", "SITE-A", "d.root", "d");
    await until(
      async () => ((await api(node, "/api/v1/datasets")).body.datasets.length === 3 ? true : undefined),
      5000,
    );
    const found = (await api(node, `/api/v1/datasets?pattern=${encodeURIComponent("mc11.*RDO*")}`)).body
      .datasets as Body[];
    expect(found.map((d) => d.name)).toEqual(["mc11.777.RDO.v1"]);
    const detail = (await api(node, "/api/v1/datasets/mc11.777.RDO.v1")).body;
    expect(detail).toMatchObject({
      fileCount: 2,
      totalBytes: 7,
      replicas: [{ site: "SITE-A", complete: true }],
    });
    expect(detail.files.map((f: Body) => f.lfn)).toEqual(["a.root", "b.root"]);
    const subscribe = (token: string, site: string) =>
      api(node, "/api/v1/datasets/mc11.777.RDO.v1/subscriptions", {
        method: "POST",
        token,
        body: JSON.stringify({ site }),
      });
    expect((await subscribe(USER_TOKEN, "has space")).status).toBe(400);
    expect((await subscribe(USER_TOKEN, "SITE-B")).body).toMatchObject({
      subscription: "mc11.777.RDO.v1@SITE-B",
      files: 2,
      created: true,
    });
    expect((await subscribe(USER_TOKEN, "SITE-B")).body.created).toBe(false);
    await until(async () => {
      const subs = (await api(node, "/api/v1/subscriptions?site=SITE-B")).body.subscriptions as Body[];
      return subs[0]?.state === "done" ? true : undefined;
    }, 15_000);
    const replicas = (await api(node, "/api/v1/datasets/mc11.777.RDO.v1")).body.replicas as Body[];
    expect(replicas.map((r) => r.site).sort()).toEqual(["SITE-A", "SITE-B"]);
    expect((await api(node, "/api/v1/subscriptions/mc11.777.RDO.v1@SITE-B")).body).toMatchObject({
      purpose: "replication",
    });
  });

  it("records and searches incidents; manages tokens (admin only, shown once, survives a restart)", async () => {
    const fixture = await grid(store);
    const reported = await api(fixture.node, "/api/v1/incidents", {
      method: "POST",
      token: pilotToken("SITE-B"),
      body: JSON.stringify({ message: "scratch disk full on wn042", pilotId: "p-1", errorCode: "ENOSPC" }),
    });
    expect(reported).toMatchObject({
      status: 201,
      body: { source: "pilot", site: "SITE-B", reporter: "p-1" },
    });
    expect(
      (
        await api(fixture.node, "/api/v1/incidents", {
          method: "POST",
          token: pilotToken("SITE-B"),
          body: JSON.stringify({ message: "x", site: "SITE-A" }),
        })
      ).status,
    ).toBe(403);
    await api(fixture.node, "/api/v1/sites/SITE-A/status", {
      method: "POST",
      token: OPERATOR_TOKEN,
      body: JSON.stringify({ status: "brokeroff", reason: "black hole" }),
    });
    await until(
      async () =>
        (await api(fixture.node, "/api/v1/incidents?source=site")).body.incidents.length === 1
          ? true
          : undefined,
      5000,
    );
    const hits = (await api(fixture.node, "/api/v1/incidents?q=wn042")).body.incidents as Body[];
    expect(hits.map((i) => i.errorCode)).toEqual(["ENOSPC"]);
    expect((await api(fixture.node, "/api/v1/incidents?site=SITE-A")).body.incidents[0].message).toMatch(
      /brokeroff by olga: black hole/,
    );
    // Tokens.
    const create = (token: string, body: object) =>
      api(fixture.node, "/api/v1/tokens", { method: "POST", token, body: JSON.stringify(body) });
    expect((await create(OPERATOR_TOKEN, { kind: "user", user: "bob", role: "operator" })).status).toBe(403);
    expect(
      (await create(ADMIN_TOKEN, { kind: "user", user: "bob", role: "king" })).body.error.message,
    ).toMatch(/role/);
    const created = await create(ADMIN_TOKEN, { kind: "user", user: "bob", role: "operator" });
    expect(created.status).toBe(201);
    const bobToken = created.body.token as string;
    expect((await api(fixture.node, "/api/v1/whoami", { token: bobToken })).body.principal).toMatchObject({
      user: "bob",
      role: "operator",
    });
    const listing = (await api(fixture.node, "/api/v1/tokens", { token: ADMIN_TOKEN })).body.tokens as Body[];
    expect(JSON.stringify(listing)).not.toContain(bobToken);
    expect(listing.find((t) => t.principal.user === "bob")).toMatchObject({
      source: "api",
      createdBy: "root",
    });
    const node = await fixture.restart();
    expect((await api(node, "/api/v1/whoami", { token: bobToken })).body.principal).toMatchObject({
      user: "bob",
    });
    const tokenId = created.body.tokenId as string;
    expect(
      (await api(node, `/api/v1/tokens/${tokenId}`, { method: "DELETE", token: ADMIN_TOKEN })).status,
    ).toBe(200);
    expect((await api(node, "/api/v1/whoami", { token: bobToken })).status).toBe(401);
  });

  it("creates a token that expires, and answers 401 saying when it expired", async () => {
    const { node } = await grid(store);
    const create = (body: object) =>
      api(node, "/api/v1/tokens", { method: "POST", token: ADMIN_TOKEN, body: JSON.stringify(body) });
    expect(
      (await create({ kind: "user", user: "cid", role: "user", ttlSec: -5 })).body.error.message,
    ).toMatch(/ttlSec/);
    const startedMs = Date.now();
    const created = await create({ kind: "user", user: "cid", role: "user", ttlSec: 1 });
    expect(created.status).toBe(201);
    const expiresAtMs = created.body.expiresAtMs as number;
    expect(expiresAtMs).toBeGreaterThanOrEqual(startedMs + 1000);
    const listing = (await api(node, "/api/v1/tokens", { token: ADMIN_TOKEN })).body.tokens as Body[];
    expect(listing.find((t) => t.tokenId === created.body.tokenId)?.expiresAtMs).toBe(expiresAtMs);
    const token = created.body.token as string;
    expect((await api(node, "/api/v1/whoami", { token })).body.principal).toMatchObject({ user: "cid" });
    // Its second runs out: from then on it opens nothing, and the answer says why.
    await expect
      .poll(async () => (await api(node, "/api/v1/whoami", { token })).status, { timeout: 5000 })
      .toBe(401);
    const refused = await api(node, "/api/v1/tasks", { token });
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toContain(
      `the token expired at ${new Date(expiresAtMs).toISOString()}`,
    );
  });

  it("exposes Prometheus metrics that move while the grid works", async () => {
    const { node } = await grid(store);
    const before = await metricValue(node, "panda_transitions_total", 'kind="job"');
    await submit(node, { taskId: "t-metrics", jobs: 4, payload, site: "SITE-A" });
    await allJobsIn(node, "t-metrics", 4, "activated");
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/# TYPE panda_commit_duration_seconds histogram/);
    expect(text).toMatch(/# TYPE panda_dispatch_latency_seconds histogram/);
    expect(text).toMatch(/panda_timer_lag_seconds \d/);
    expect(text).toMatch(/panda_outbox_pending_effects \d/);
    expect(await metricValue(node, "panda_transitions_total", 'kind="job"')).toBeGreaterThanOrEqual(
      before + 8,
    );
    expect(await metricValue(node, "panda_jobs", 'site="SITE-A",state="activated"')).toBe(4);
    expect(await metricValue(node, "panda_commit_duration_seconds_count", "")).toBeGreaterThan(0);
  });
});

describe("reads with readRequiresToken", () => {
  it("need a user token", async () => {
    const { node } = await grid("memory", { readRequiresToken: true });
    expect((await api(node, "/api/v1/jobs")).status).toBe(401);
    expect((await api(node, "/api/v1/jobs", { token: USER_TOKEN })).status).toBe(200);
    const task = (await api(node, "/api/v1/tasks", { token: USER_TOKEN })).body as { tasks: TaskContext[] };
    expect(task.tasks).toEqual([]);
  });
});
