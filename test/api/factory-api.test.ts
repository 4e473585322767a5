import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import type { QueueReport } from "../../src/actors/factory/schema.js";
import { PILOT_BUNDLE_PATH } from "../../src/server/pilot-bundle.js";
import { TokenRegistry } from "../../src/server/tokens.js";
import { api, pilotToken } from "../e2e/grid-fixture.js";
import { queueReport, reportBody } from "../support/factory-report.js";
import { OPERATOR_TOKEN, USER_TOKEN, useApiGrid } from "./api-fixture.js";

const record = { factory: "f1", queue: "q1", site: "SITE-A", batchSystem: "slurm", pilots: 1 };
const put = (body: unknown, token = pilotToken("SITE-A")) => ({
  method: "PUT",
  token,
  body: JSON.stringify(body),
});

describe("the factory API", () => {
  const start = useApiGrid();

  it("mints short-lived pilot tokens for a site's factory only, and they open pilot sessions until they expire", async () => {
    const { node } = await start("memory");
    const mint = (token: string, site = "SITE-A", ttlSec = 60) =>
      api(node, `/api/v1/sites/${site}/pilot-tokens`, {
        method: "POST",
        token,
        body: JSON.stringify({ pilotJobId: "pj-1", ttlSec }),
      });
    const minted = await mint(pilotToken("SITE-A"));
    expect(minted.status).toBe(201);
    const token = minted.body.token as string;
    const upgrade = {} as IncomingMessage;
    expect(await node.dispatcher.authenticate(token, upgrade)).toEqual({
      site: "SITE-A",
      tokenId: "pj:pj-1",
    });
    // A batch job's token runs pilots, nothing more: it mints nothing and reads no demand.
    expect((await mint(token)).status).toBe(403);
    expect((await mint(pilotToken("SITE-B"))).status).toBe(403);
    expect((await mint(USER_TOKEN)).status).toBe(403);
    expect((await mint(OPERATOR_TOKEN, "SITE-C")).status).toBe(201);
    expect((await mint(pilotToken("SITE-A"), "SITE-A", 0)).status).toBe(400);
    expect(await node.dispatcher.authenticate(`${token.slice(0, -4)}AAAA`, upgrade)).toBeNull();
    const expiresAtMs = minted.body.expiresAtMs as number;
    expect(expiresAtMs).toBeGreaterThan(Date.now());
    expect(expiresAtMs).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it("a pilot-job token is refused once it expired, and by a registry with another secret", () => {
    const registry = new TokenRegistry([], undefined, randomBytes(32));
    const { token, expiresAtMs } = registry.mintPilotJobToken("SITE-A", "pj-9", 1_000, 5_000);
    expect(registry.lookup(token, expiresAtMs - 1)).toMatchObject({ kind: "pilot", pilotJobId: "pj-9" });
    expect(registry.lookup(token, expiresAtMs)).toBeNull();
    expect(new TokenRegistry([], undefined, randomBytes(32)).lookup(token, 5_000)).toBeNull();
  });

  it("reads a site's demand: activated and assigned jobs, idle pilot threads", async () => {
    const { node } = await start("memory");
    const demand = await api(node, "/api/v1/sites/SITE-A/demand", { token: pilotToken("SITE-A") });
    expect(demand.status).toBe(200);
    expect(demand.body).toMatchObject({ site: "SITE-A", activated: 0, assigned: 0, idleThreads: 0 });
    expect((await api(node, "/api/v1/sites/SITE-A/demand", { token: pilotToken("SITE-B") })).status).toBe(
      403,
    );
    expect((await api(node, "/api/v1/sites/NOPE/demand")).status).toBe(404);
  });

  it("keeps pilot-job records durable, moving only forward, and lists the live ones", async () => {
    const { node } = await start("redis");
    const created = await api(node, "/api/v1/pilot-jobs/pj-a", put({ record }));
    expect(created.status).toBe(200);
    expect(created.body.pilotJob).toMatchObject({ id: "pj-a", state: "submitting", batchId: null });
    await api(node, "/api/v1/pilot-jobs/pj-a", put({ record, event: { type: "submitted", batchId: "17" } }));
    const running = await api(
      node,
      "/api/v1/pilot-jobs/pj-a",
      put({ record, event: { type: "observed", state: "running" }, eventId: "pj-a:running" }),
    );
    expect(running.body.pilotJob).toMatchObject({ state: "running", batchId: "17" });
    // An older observation changes nothing.
    const stale = await api(
      node,
      "/api/v1/pilot-jobs/pj-a",
      put({ record, event: { type: "observed", state: "queued" } }),
    );
    expect(stale.body).toMatchObject({ applied: false, pilotJob: { state: "running" } });
    await api(node, "/api/v1/pilot-jobs/pj-b", put({ record }));
    const live = await api(node, "/api/v1/pilot-jobs?factory=f1&live=true", { token: pilotToken("SITE-A") });
    expect((live.body.pilotJobs as { id: string }[]).map((j) => j.id).sort()).toEqual(["pj-a", "pj-b"]);
    await api(
      node,
      "/api/v1/pilot-jobs/pj-a",
      put({
        record,
        event: { type: "observed", state: "failed", exitCode: 4, reason: "no call home" },
      }),
    );
    const after = await api(node, "/api/v1/pilot-jobs?factory=f1&live=true");
    expect((after.body.pilotJobs as { id: string }[]).map((j) => j.id)).toEqual(["pj-b"]);
    const all = await api(node, "/api/v1/pilot-jobs?factory=f1");
    expect((all.body.pilotJobs as { id: string; state: string; exitCode: number }[])[1]).toMatchObject({
      id: "pj-a",
      state: "failed",
      exitCode: 4,
    });
    const foreign = await api(node, "/api/v1/pilot-jobs/pj-b", put({ record }, pilotToken("SITE-B")));
    expect(foreign.status).toBe(403);
    const bad = await api(node, "/api/v1/pilot-jobs/pj-c", put({ record: { ...record, pilots: -1 } }));
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("record.pilots");
    const inspected = await api(node, "/api/v1/actors/pilot-job/pj-a");
    expect((inspected.body.history as { to: string }[]).map((h) => h.to)).toEqual([
      "submitting",
      "queued",
      "running",
      "running",
      "failed",
    ]);
  });

  it("keeps a factory's report and records an incident when a queue is throttled and when it recovers", async () => {
    const { node } = await start("memory");
    const queue = queueReport();
    const send = (q: QueueReport) =>
      api(node, "/api/v1/factories/f1/queues/q1", {
        method: "PUT",
        token: pilotToken("SITE-A"),
        body: reportBody(q),
      });
    expect((await send(queue)).status).toBe(200);
    const throttle = {
      throttled: true,
      reason: "3 pilots in a row failed within 60 s",
      sinceMs: 5,
      backoffSec: 8,
      consecutiveFastFailures: 3,
    };
    await send({ ...queue, throttle });
    await send({ ...queue, throttle });
    await send(queue);
    const listed = await api(node, "/api/v1/factories");
    expect(listed.body.factories).toMatchObject([
      { name: "f1", queues: [{ name: "q1", jobs: { running: 2 } }] },
    ]);
    const incidents = await api(node, "/api/v1/incidents?source=factory");
    expect((incidents.body.incidents as { message: string }[]).map((i) => i.message)).toEqual([
      "factory f1 queue q1 recovered: pilots succeed again",
      "factory f1 throttles queue q1: 3 pilots in a row failed within 60 s; one submission per 8 s",
    ]);
    const foreign = await api(node, "/api/v1/factories/f1/queues/q1", {
      method: "PUT",
      token: pilotToken("SITE-B"),
      body: reportBody(queue),
    });
    expect(foreign.status).toBe(403);
  });

  it("serves the pilot bundle with its SHA-256", async () => {
    const { node } = await start("memory");
    const res = await fetch(`${node.url}/pilot/bundle`);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const checksum = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    expect(res.headers.get("x-panda-checksum")).toBe(checksum);
    expect(bytes.equals(readFileSync(PILOT_BUNDLE_PATH))).toBe(true);
    const head = await fetch(`${node.url}/pilot/bundle`, { method: "HEAD" });
    expect(head.headers.get("x-panda-checksum")).toBe(checksum);
  });
});
