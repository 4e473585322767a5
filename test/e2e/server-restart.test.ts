import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { registerWorkloadKinds } from "../../src/actors/index.js";
import { jobStateOf } from "../../src/actors/job/state.js";
import type { SiteContext } from "../../src/actors/site/schema.js";
import type { TaskContext } from "../../src/actors/task/schema.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { Runtime } from "../../src/runtime/runtime.js";
import type { ServerNodeOptions } from "../../src/server/server.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { type PilotProcess, until } from "../pilot/pilot-process.js";
import { freePort } from "../support/free-port.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { ServerChild } from "../support/server-child.js";
import { sitePilotTokens, startSitePilots } from "../support/site-pilots.js";
import { testSite, USER_TOKEN } from "./grid-fixture.js";

const SITES = ["SITE-X", "SITE-Y"];
const PILOTS_PER_SITE = 3;
const JOBS = 200;
const FINAL = new Set(["finished", "failed", "cancelled", "closed"]);

describe("server restart on Redis", () => {
  let redisUrl: string;
  let redis: Redis;
  const prefix = uniquePrefix("restart");
  const dataDir = mkdtempSync(join(tmpdir(), "panda-restart-"));
  const servers: ServerChild[] = [];
  const pilots: PilotProcess[] = [];

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    for (const pilot of pilots) await pilot.stop();
    for (const server of servers) await server.kill();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("loses no job when the server is SIGKILLed with 200 jobs in flight: pilots reconnect, each job ends once", async () => {
    onTestFailed(() => {
      for (const [i, p] of pilots.entries())
        process.stderr.write(`--- pilot ${i} ---\n${p.log.slice(-3000)}\n`);
    });
    const port = await freePort();
    const options: ServerNodeOptions = {
      port,
      dataDir,
      redisUrl,
      redisPrefix: prefix,
      shardCount: 16,
      leaseMs: 1500,
      heartbeatMs: 500,
      pingIntervalMs: 1000,
      sites: SITES.map((s) => testSite(s)),
      tokens: [{ token: USER_TOKEN, kind: "user", user: "alice", role: "user" }, ...sitePilotTokens(SITES)],
    };
    const first = new ServerChild(options);
    servers.push(first);
    const url = await first.url;
    pilots.push(...startSitePilots(url, SITES, PILOTS_PER_SITE, dataDir));
    const store = await RedisStore.connect({ url: redisUrl, prefix });
    const client = new Runtime({
      store,
      registry: registerWorkloadKinds(new KindRegistry()),
      shardCount: 16,
      clientOnly: true,
    });
    // Brokerage sends work only to sites whose pilots it has seen.
    for (const site of SITES) {
      await until(async () => {
        const view = await client.readState({ kind: "site", id: site });
        return (view?.context as SiteContext | undefined)?.pilots.lastSeenAtMs ? true : undefined;
      }, 30_000);
    }
    const taskId = "t-restart";
    const res = await fetch(`${url}/api/v1/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${USER_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        taskId,
        jobs: JOBS,
        type: "analysis",
        resources: { walltimeSec: 600 },
        payload: { command: ["sleep", "0.2"] },
        watchdogs: { heartbeatTimeoutMs: 15_000, sentTimeoutMs: 5_000 },
      }),
    });
    expect(res.status).toBe(201);
    const task = async () =>
      (await client.readState({ kind: "task", id: taskId }))?.context as TaskContext | undefined;

    // Kill while work is spread over every stage: some finished, most not yet.
    await until(async () => {
      const t = await task();
      if (process.env.PANDA_TEST_DEBUG) console.log(JSON.stringify(t?.counts));
      return (t?.counts.finished ?? 0) >= 20 ? true : undefined;
    }, 60_000);
    await first.kill();
    const finishedAtKill = (await task())!.counts.finished;
    expect(finishedAtKill).toBeLessThan(JOBS);

    const second = new ServerChild(options);
    servers.push(second);
    expect(await second.url).toBe(url);
    let polls = 0;
    const ended = await until(async () => {
      const t = await task();
      if (process.env.PANDA_TEST_DEBUG && polls++ % 300 === 0) {
        const states: Record<string, number> = {};
        for (let i = 0; i < JOBS; i++) {
          const j = await client.readState({ kind: "job", id: `${taskId}-${i}.${t?.attempts[i] ?? 1}` });
          states[j?.state ?? "none"] = (states[j?.state ?? "none"] ?? 0) + 1;
        }
        console.log("after restart", JSON.stringify(t?.counts), JSON.stringify(states));
      }
      return t && t.counts.live === 0 ? t : undefined;
    }, 120_000);

    expect(ended.counts.finished + ended.counts.failed + ended.counts.cancelled + ended.counts.closed).toBe(
      JOBS,
    );
    expect(ended.outcomes.every((o) => o !== null)).toBe(true);
    // Every attempt of every job reached a final state exactly once.
    for (let index = 0; index < JOBS; index++) {
      for (let attempt = 1; attempt <= ended.attempts[index]!; attempt++) {
        const view = await client.inspect({ kind: "job", id: `${taskId}-${index}.${attempt}` });
        expect(view, `${index}.${attempt}`).not.toBeNull();
        const finals = view!.history.filter((h) => !h.refused && FINAL.has(h.to.split(".")[0]!));
        expect(finals, `${taskId}-${index}.${attempt}`).toHaveLength(1);
        expect(FINAL.has(jobStateOf(view!.state))).toBe(true);
      }
    }
    console.log(
      `server restart: ${finishedAtKill} of ${JOBS} finished at the kill; after restart ${ended.counts.finished} finished, ${ended.counts.failed} failed, ${ended.counts.retries} retries`,
    );
    await store.close();
  }, 240_000);
});
