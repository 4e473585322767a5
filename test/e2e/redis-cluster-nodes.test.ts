import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import { actorKeyOf, shardOf } from "../../src/runtime/actor-ref.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { parseRedisSeeds } from "../../src/server/redis-connection.js";
import { type ServerNode, type ServerNodeOptions, startServerNode } from "../../src/server/server.js";
import { secretOnRedis } from "../../src/server/shared-secrets.js";
import { readContext } from "../../src/workload/context.js";
import { putFiles } from "../../src/workload/datasets.js";
import { PilotProcess, until } from "../pilot/pilot-process.js";
import { describeHistory, finalTransitions } from "../support/cluster-grid.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";
import { redisBinariesAvailable, reportUnavailable } from "../support/redis-process.js";
import { api, pilotToken, submitTask, testSite, USER_TOKEN } from "./grid-fixture.js";

const SITE = "SITE-CL";
const ADMIN_TOKEN = `admin-${"a".repeat(24)}`;
const JOBS = 20;

describe("the shared secrets of a deployment on Redis", () => {
  const cleanups = useCleanups();

  it("are set by the first node and read by every other, a secret kept in a data directory offered first", async () => {
    const redis = new Redis(await getRedisUrl());
    const prefix = uniquePrefix("secrets");
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), "panda-secret-")));
    cleanups.push(async () => {
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });
    const kept = Buffer.alloc(32, 7);
    writeFileSync(join(dirs[0]!, "resume-secret"), kept);
    const first = await secretOnRedis(redis, prefix, "resume-secret", dirs[0]!);
    const second = await secretOnRedis(redis, prefix, "resume-secret", dirs[1]!);
    expect(first.equals(kept)).toBe(true);
    expect(second.equals(kept)).toBe(true);
    const made = await secretOnRedis(redis, prefix, "pilot-job-secret", dirs[1]!);
    expect(made.length).toBe(32);
    expect((await secretOnRedis(redis, prefix, "pilot-job-secret", dirs[0]!)).equals(made)).toBe(true);
  });

  it("are refused with a clear error for a malformed --redis setting", () => {
    expect(() => parseRedisSeeds("http://x:1")).toThrow(
      /redis URL 1: must be a redis:\/\/ or rediss:\/\/ URL/,
    );
    expect(() => parseRedisSeeds("redis://a:1,redis://b:2/x")).toThrow(
      /redis URL 2: the database must be a number/,
    );
    expect(parseRedisSeeds("redis://a:7001, rediss://u:p@b:7002")).toEqual([
      { host: "a", port: 7001, tls: false, db: 0 },
      { host: "b", port: 7002, tls: true, db: 0, username: "u", password: "p" },
    ]);
  });
});

type Cleanups = (() => Promise<void>)[];

/** What a test started, stopped after it in the reverse order. */
function useCleanups(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}

/** A server node on `redisUrl` (one server or a Cluster's seeds) with the test's site and tokens; closed by `cleanups`. */
async function startNode(
  cleanups: Cleanups,
  redisUrl: string,
  prefix: string,
  extra: Partial<ServerNodeOptions> = {},
): Promise<ServerNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "panda-nodes-"));
  const started = await startServerNode({
    port: 0,
    dataDir,
    redisUrl,
    redisPrefix: prefix,
    sites: [testSite(SITE)],
    tokens: [
      { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
      { token: ADMIN_TOKEN, kind: "user", user: "root", role: "admin" },
      { token: pilotToken(SITE), kind: "pilot", site: SITE },
    ],
    heartbeatMs: 500,
    pingIntervalMs: 1000,
    leaseMs: 3000,
    log: silentLogger,
    ...extra,
  });
  cleanups.push(async () => {
    await started.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return started;
}

/** A real pilot process of the test's site on `servers` (the first, then the next after a dropped socket); stopped by `cleanups`. */
function startPilot(cleanups: Cleanups, servers: ServerNode | ServerNode[], flags: string[]): PilotProcess {
  const workdir = mkdtempSync(join(tmpdir(), "panda-nodes-pilot-"));
  const urls = (Array.isArray(servers) ? servers : [servers]).map((s) => s.url).join(",");
  const started = new PilotProcess(["--server", urls, "--site", SITE, "--workdir", workdir, ...flags], {
    ...process.env,
    PANDA_PILOT_TOKEN: pilotToken(SITE),
  });
  cleanups.push(async () => {
    await started.stop();
    rmSync(workdir, { recursive: true, force: true });
  });
  return started;
}

/** Resolves once the nodes hold every shard between them, each some. */
async function untilShardsShared(nodes: readonly ServerNode[]): Promise<void> {
  const shardCount = nodes[0]!.grid.runtime.shardCount;
  await until(() => {
    const owned = nodes.map((n) => n.grid.runtime.ownedShards().length);
    return owned.every((n) => n > 0) && owned.reduce((a, b) => a + b, 0) === shardCount ? true : undefined;
  }, 30_000);
}

/** Two nodes on the test Redis under a prefix of their own (removed after), once they share the shards. */
async function twoNodesOnRedis(
  cleanups: Cleanups,
  name: string,
  extra: Partial<ServerNodeOptions> = {},
): Promise<[ServerNode, ServerNode]> {
  const redisUrl = await getRedisUrl();
  const prefix = uniquePrefix(name);
  const admin = new Redis(redisUrl);
  cleanups.push(async () => {
    await cleanupPrefix(admin, prefix);
    admin.disconnect();
  });
  const a = await startNode(cleanups, redisUrl, prefix, extra);
  const b = await startNode(cleanups, redisUrl, prefix, extra);
  await untilShardsShared([a, b]);
  return [a, b];
}

const canRunCluster = redisBinariesAvailable();
if (!canRunCluster) reportUnavailable("Redis Cluster (no redis-server/redis-cli binary)");

describe.skipIf(!canRunCluster)("server nodes on a 3-master Redis Cluster", () => {
  const held = useRedisCluster();
  const cleanups = useCleanups();

  it("takes the Cluster from its seeds, shares the shards between two nodes, and runs jobs of both nodes' shards on one node's pilot", async () => {
    const prefix = uniquePrefix("cluster-nodes");
    cleanups.push(() => cleanupPrefix(held.admin, prefix));
    // Seeds listed with one that does not answer first: a node still finds the Cluster.
    const seeds = [
      "redis://127.0.0.1:1",
      ...held.cluster.nodes.map((n) => `redis://${n.host}:${n.port}`),
    ].join(",");
    const a = await startNode(cleanups, seeds, prefix);
    const b = await startNode(cleanups, seeds, prefix);
    expect(a.grid.runtime.store.name).toBe("redis-cluster");
    const shardCount = a.grid.runtime.shardCount;
    await untilShardsShared([a, b]);
    // The only pilot is on node b: jobs of node a's shards reach it across nodes.
    startPilot(cleanups, b, ["--multitask", "--stay"]);
    await until(() => (b.dispatcher.connectedPilots().length === 1 ? true : undefined), 30_000);
    const pilotNode = new Map<string, ServerNode>([[b.dispatcher.connectedPilots()[0]!.pilotId, b]]);
    await submitTask(a, { taskId: "t-cl", jobs: JOBS, payload: { command: ["true"] } });
    const task = await until(async () => {
      const view = await readContext(b.grid.ctx, "task", "t-cl");
      return view?.status === "done" ? view : undefined;
    }, 120_000);
    expect(task.state).toBe("done");
    // Every job finished once; some ran on a pilot of the node that does not own the job's shard.
    let acrossNodes = 0;
    const pilotsUsed = new Set<string>();
    for (let index = 0; index < JOBS; index++) {
      const jobId = `t-cl-${index}.1`;
      const view = await b.grid.runtime.inspect({ kind: "job", id: jobId });
      expect(view?.state).toBe("finished");
      // One final transition; a pilot's report that arrives after it is refused, and its refusal is in the history too.
      const finals = finalTransitions(view!.history);
      expect(
        finals.map((h) => h.to),
        describeHistory(view!.history),
      ).toEqual(["finished"]);
      const dispatch = view!.history.find((h) => h.event.type === "dispatch");
      const pilotId = String((dispatch?.event as { pilotId?: unknown } | undefined)?.pilotId);
      pilotsUsed.add(pilotId);
      const shard = shardOf(actorKeyOf({ kind: "job", id: jobId }), shardCount);
      const owner = a.grid.runtime.ownedShards().includes(shard) ? a : b;
      if (pilotNode.get(pilotId) !== owner) acrossNodes++;
      expect((view!.context as JobContext).exitCode).toBe(0);
    }
    expect([...pilotsUsed]).toEqual([...pilotNode.keys()]);
    expect(acrossNodes).toBeGreaterThan(0);
  }, 180_000);
});

describe("server nodes on one Redis tell each other", () => {
  const cleanups = useCleanups();

  it("push a job queued on one node's shard to an idle pilot of the other at once, and a kill through the first reaches its payload within a second", async () => {
    // Far beyond the test's waits: only the nodes' notices can move work and kills in time.
    const slowNets = { idlePollMs: 120_000, heartbeatMs: 60_000 };
    const [a, b] = await twoNodesOnRedis(cleanups, "node-notices", slowNets);
    const shardCount = a.grid.runtime.shardCount;
    const pilotProcess = startPilot(cleanups, b, ["--stay"]);
    await until(
      () => (b.dispatcher.connectedPilots()[0]?.ready.includes("primary") ? true : undefined),
      30_000,
    );
    // A task whose job lives on a shard of node a, whose only pilot waits on node b.
    const ownedByA = new Set(a.grid.runtime.ownedShards());
    let taskId = "";
    for (let n = 0; !taskId; n++) {
      const candidate = `t-notice-${n}`;
      if (ownedByA.has(shardOf(actorKeyOf({ kind: "job", id: `${candidate}-0.1` }), shardCount)))
        taskId = candidate;
    }
    const jobId = `${taskId}-0.1`;
    await submitTask(a, { taskId, jobs: 1, payload: { command: ["sleep", "600"] } });
    await until(
      async () => ((await readContext(a.grid.ctx, "job", jobId))?.state === "running" ? true : undefined),
      15_000,
    );
    const killedAtMs = Date.now();
    const killed = await api(a, `/api/v1/jobs/${jobId}/kill`, { method: "POST", token: USER_TOKEN });
    expect(killed.status).toBe(200);
    await until(
      () =>
        pilotProcess.log.includes(`"jobId":"${jobId}"`) && /"outcome":"cancelled"/.test(pilotProcess.log)
          ? true
          : undefined,
      5000,
    );
    expect(Date.now() - killedAtMs).toBeLessThan(1500);
  }, 90_000);
});

describe("tokens created through one node's API", () => {
  const cleanups = useCleanups();

  it("open every node of the deployment (each with a data directory of its own), and a revocation on another closes them", async () => {
    const [a, b] = await twoNodesOnRedis(cleanups, "node-tokens");
    const created = await api(a, "/api/v1/tokens", {
      method: "POST",
      token: ADMIN_TOKEN,
      body: JSON.stringify({ kind: "user", user: "bob", role: "user" }),
    });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    await expect
      .poll(async () => (await api(b, "/api/v1/whoami", { token })).status, { timeout: 2000, interval: 20 })
      .toBe(200);
    expect((await api(b, "/api/v1/whoami", { token })).body.principal).toMatchObject({ user: "bob" });
    const revoked = await api(b, `/api/v1/tokens/${created.body.tokenId as string}`, {
      method: "DELETE",
      token: ADMIN_TOKEN,
    });
    expect(revoked.status).toBe(200);
    await expect
      .poll(async () => (await api(a, "/api/v1/whoami", { token })).status, { timeout: 2000, interval: 20 })
      .toBe(401);
  }, 60_000);
});

describe("a write through one node to an actor of another node's shard", () => {
  const cleanups = useCleanups();

  it("is answered once that node applied it: a dataset put through one node is there for the next read, and a task over it can be submitted at once", async () => {
    const [a, b] = await twoNodesOnRedis(cleanups, "read-your-writes");
    const shardCount = a.grid.runtime.shardCount;
    const ownedByB = new Set(b.grid.runtime.ownedShards());
    let name = "";
    for (let n = 0; !name; n++) {
      const candidate = `ryw.inputs.${n}`;
      if (ownedByB.has(shardOf(actorKeyOf({ kind: "dataset", id: candidate }), shardCount))) name = candidate;
    }
    await putFiles(a.grid.ctx, name, SITE, [{ lfn: `${name}.f1`, bytes: Buffer.from("one\n") }]);
    // No wait: the put's answer came after node b committed both the dataset's creation and its file.
    const dataset = await readContext(a.grid.ctx, "dataset", name);
    expect(dataset?.state).toBe("open");
    expect(Object.keys(dataset?.context.files ?? {})).toEqual([`${name}.f1`]);
    const submitted = await api(a, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        name: "over a fresh dataset",
        input: { dataset: name, filesPerJob: 1 },
        payload: { command: ["true"] },
      }),
    });
    expect(submitted.status).toBe(201);
  }, 60_000);
});

describe("the live monitor of a node on one Redis with another", () => {
  const cleanups = useCleanups();

  it("streams to its browsers the changes committed on the other node within a second", async () => {
    const [a, b] = await twoNodesOnRedis(cleanups, "live-nodes");
    // A browser on node b.
    const aborter = new AbortController();
    cleanups.push(async () => aborter.abort());
    const stream = await fetch(`${b.url}/api/v1/events`, { signal: aborter.signal });
    const reader = stream.body!.getReader();
    let received = "";
    void (async () => {
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return;
        received += decoder.decode(value, { stream: true });
      }
    })();
    await until(() => (received.includes("event: hello") ? true : undefined), 10_000);
    await until(() => (a.live.othersWatching ? true : undefined), 10_000);
    // A task whose actor lives on a shard of node a.
    const ownedByA = new Set(a.grid.runtime.ownedShards());
    const shardCount = a.grid.runtime.shardCount;
    let taskId = "";
    for (let n = 0; !taskId; n++) {
      const candidate = `t-live-${n}`;
      if (ownedByA.has(shardOf(actorKeyOf({ kind: "task", id: candidate }), shardCount))) taskId = candidate;
    }
    const submittedAtMs = Date.now();
    await submitTask(a, { taskId, jobs: 1, payload: { command: ["true"] } });
    await until(() => (received.includes(`"id":"${taskId}"`) ? true : undefined), 5000);
    expect(Date.now() - submittedAtMs).toBeLessThan(1000);
    expect(received).toMatch(new RegExp(`"kind":"task","id":"${taskId}"`));
  }, 60_000);
});

describe("a node drained mid-run", () => {
  const cleanups = useCleanups();

  it("hands its shards and its pilot over to the other node: every job finishes at its first attempt", async () => {
    const [a, b] = await twoNodesOnRedis(cleanups, "drain");
    // The pilot knows both nodes, and starts on a.
    startPilot(cleanups, [a, b], ["--stay"]);
    await until(() => (a.dispatcher.connectedPilots().length === 1 ? true : undefined), 30_000);
    const jobs = 3;
    await submitTask(b, { taskId: "t-drain", jobs, payload: { command: ["sleep", "2"] } });
    await until(async () => {
      const view = await readContext(b.grid.ctx, "job", "t-drain-0.1");
      return view?.state === "running" ? true : undefined;
    }, 30_000);
    // The drain: what SIGTERM does to `panda server`.
    await a.close();
    const task = await until(async () => {
      const view = await readContext(b.grid.ctx, "task", "t-drain");
      return view?.status === "done" ? view : undefined;
    }, 60_000);
    expect(task.state).toBe("done");
    expect(b.grid.runtime.ownedShards()).toHaveLength(b.grid.runtime.shardCount);
    expect(b.dispatcher.connectedPilots()).toHaveLength(1);
    for (let index = 0; index < jobs; index++) {
      const view = await b.grid.runtime.inspect({ kind: "job", id: `t-drain-${index}.1` });
      expect(view?.state).toBe("finished");
      expect(
        finalTransitions(view!.history).map((h) => h.to),
        describeHistory(view!.history),
      ).toEqual(["finished"]);
      expect(view!.history.some((h) => h.to === "failed")).toBe(false);
      expect(await b.grid.runtime.readState({ kind: "job", id: `t-drain-${index}.2` })).toBeNull();
    }
  }, 120_000);
});
