import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { type ServerNodeOptions, startServerNode } from "../../src/server/server.js";
import { type PilotProcess, until } from "../pilot/pilot-process.js";
import { freePort } from "../support/free-port.js";
import { ServerChild } from "../support/server-child.js";
import { sitePilotTokens, startSitePilots } from "../support/site-pilots.js";
import { testSite, USER_TOKEN } from "./grid-fixture.js";

const SITES = ["SITE-X", "SITE-Y"];
const JOBS = 60;
const FINAL = new Set(["finished", "failed", "cancelled", "closed"]);
const ADMIN_TOKEN = "admin-durable-restart-token-0001";

type Body = Record<string, unknown>;

async function get(url: string, path: string, token = USER_TOKEN): Promise<Body> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, ...((await res.json()) as Body) };
}

async function post(url: string, path: string, body: string, token: string, type = "application/json") {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body,
  });
}

describe("server restart on the embedded store (durable on disk)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "panda-durable-restart-"));
  const servers: ServerChild[] = [];
  const pilots: PilotProcess[] = [];

  afterAll(async () => {
    for (const pilot of pilots) await pilot.stop();
    for (const server of servers) await server.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("brings back every task, job, dataset and token after a SIGKILL; storage and state agree; work goes on", async () => {
    onTestFailed(() => {
      for (const [i, p] of pilots.entries())
        process.stderr.write(`--- pilot ${i} ---\n${p.log.slice(-3000)}\n`);
    });
    const options: ServerNodeOptions = {
      port: await freePort(),
      dataDir,
      shardCount: 8,
      heartbeatMs: 500,
      pingIntervalMs: 1000,
      sites: SITES.map((s) => testSite(s)),
      tokens: [
        { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
        { token: ADMIN_TOKEN, kind: "user", user: "root", role: "admin" },
        ...sitePilotTokens(SITES),
      ],
    };
    const first = new ServerChild(options);
    servers.push(first);
    const url = await first.url;
    pilots.push(...startSitePilots(url, SITES, 2, dataDir));
    const put = await post(
      url,
      `/api/v1/datasets/user.alice.inputs/files?site=SITE-X&lfn=in-1.txt`,
      "input bytes",
      USER_TOKEN,
      "application/octet-stream",
    );
    expect(put.status).toBe(201);
    const created = await post(
      url,
      "/api/v1/tokens",
      JSON.stringify({ kind: "user", user: "bob", role: "user" }),
      ADMIN_TOKEN,
    );
    const bobToken = ((await created.json()) as { token: string }).token;
    // Brokerage sends work only to sites whose pilots it has seen.
    for (const site of SITES)
      await until(async () => {
        const view = (await get(url, `/api/v1/actors/site/${site}`)) as {
          context?: { pilots: { lastSeenAtMs?: number } };
        };
        return view.context?.pilots.lastSeenAtMs ? true : undefined;
      }, 30_000);
    const submitted = await post(
      url,
      "/api/v1/tasks",
      JSON.stringify({
        taskId: "t-durable",
        jobs: JOBS,
        type: "analysis",
        resources: { walltimeSec: 600 },
        payload: { command: ["sh", "-c", "sleep 0.5; echo out > output.txt"] },
        watchdogs: { heartbeatTimeoutMs: 15_000, sentTimeoutMs: 5_000 },
      }),
      USER_TOKEN,
    );
    expect(submitted.status).toBe(201);
    const counts = async () =>
      (await get(url, "/api/v1/tasks/t-durable")).counts as Record<string, number> | undefined;

    // Killed with work at every stage: some jobs finished, most not yet.
    await until(async () => (((await counts())?.finished ?? 0) >= 8 ? true : undefined), 60_000);
    const atKill = await counts();
    await first.kill();
    expect(atKill!.finished).toBeLessThan(JOBS);

    const second = new ServerChild(options);
    servers.push(second);
    expect(await second.url).toBe(url);
    // Up at once: the shards of the killed process are reclaimed, not waited out.
    expect((await get(url, "/healthz")).shards).toBe(8);
    expect((await get(url, "/api/v1/whoami", bobToken)).principal).toMatchObject({ user: "bob" });
    const inputs = (await get(url, "/api/v1/datasets/user.alice.inputs")) as Body & { fileCount: number };
    expect(inputs.fileCount).toBe(1);

    const ended = await until(async () => {
      const c = await counts();
      return c && c.live === 0 ? c : undefined;
    }, 120_000);
    expect(ended.finished! + ended.failed! + ended.cancelled! + ended.closed!).toBe(JOBS);
    // Every attempt of every job reached a final state exactly once, across the kill.
    const { jobs } = (await get(url, "/api/v1/jobs?task=t-durable&limit=10000")) as {
      jobs: { jobId: string }[];
    };
    expect(jobs.length).toBeGreaterThanOrEqual(JOBS);
    for (const { jobId } of jobs) {
      const view = (await get(url, `/api/v1/actors/job/${jobId}?history=1000`)) as {
        history: { to: string; refused?: unknown }[];
      };
      const finals = view.history.filter((h) => !h.refused && FINAL.has(h.to.split(".")[0]!));
      expect(finals, jobId).toHaveLength(1);
    }
    // Every replica the state lists is a file in that site's storage.
    const { datasets } = (await get(url, "/api/v1/datasets?pattern=*")) as { datasets: { name: string }[] };
    expect(datasets.map((d) => d.name)).toEqual(expect.arrayContaining(["user.alice.inputs"]));
    let replicaFiles = 0;
    for (const { name } of datasets) {
      const view = (await get(url, `/api/v1/datasets/${encodeURIComponent(name)}`)) as {
        replicas: { site: string; lfns: string[] }[];
      };
      for (const replica of view.replicas)
        for (const lfn of replica.lfns) {
          expect(existsSync(join(dataDir, "storage", replica.site, lfn)), `${replica.site}/${lfn}`).toBe(
            true,
          );
          replicaFiles++;
        }
    }
    expect(replicaFiles).toBeGreaterThan(JOBS);
  }, 240_000);
});

describe("storage that no state owns", () => {
  it("moves aside files a new state finds in storage, so no run shows files of a state that is gone", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "panda-orphaned-"));
    try {
      // Left by an in-memory run: a file in SITE-X's storage, and no state directory.
      mkdirSync(join(dataDir, "storage", "SITE-X"), { recursive: true });
      writeFileSync(join(dataDir, "storage", "SITE-X", "left-over.root"), "old bytes");
      const warnings: string[] = [];
      const log = {
        debug() {},
        info() {},
        error() {},
        warn: (_: object, message: string) => warnings.push(message),
      };
      const node = await startServerNode({ port: 0, dataDir, sites: [testSite("SITE-X")], log });
      await node.close();
      const aside = readdirSync(dataDir).find((name) => name.startsWith("storage-orphaned-"));
      expect(aside).toBeDefined();
      expect(readFileSync(join(dataDir, aside!, "SITE-X", "left-over.root"), "utf8")).toBe("old bytes");
      expect(existsSync(join(dataDir, "storage", "SITE-X", "left-over.root"))).toBe(false);
      expect(warnings).toEqual(["storage held files that no state owns: moved aside"]);
      // A state that exists owns its storage: a second start moves nothing.
      writeFileSync(join(dataDir, "storage", "SITE-X", "kept.root"), "new bytes");
      const again = await startServerNode({ port: 0, dataDir, sites: [testSite("SITE-X")], log });
      await again.close();
      expect(existsSync(join(dataDir, "storage", "SITE-X", "kept.root"))).toBe(true);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
