import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, onTestFailed } from "vitest";
import type { SiteInput } from "../../src/actors/site/schema.js";
import { type ServerNode, type ServerNodeOptions, startServerNode } from "../../src/server/server.js";
import { PilotProcess } from "../pilot/pilot-process.js";
import { cleanupPrefixAt, getRedisUrl, uniquePrefix } from "../support/redis.js";

export const USER_TOKEN = `user-${randomBytes(12).toString("hex")}`;
export const OTHER_USER_TOKEN = `other-${randomBytes(12).toString("hex")}`;

export function pilotToken(site: string): string {
  return `pilot-${site}-secret-token-0001`;
}

/** A one-core pilot's hello without multitask, as the in-process test pilots send it. */
export function pilotHello(site: string, hostname: string) {
  return {
    site,
    hostname,
    cores: 1,
    memoryMb: 4000,
    diskMb: 100_000,
    walltimeLeftSec: 86_400,
    multitask: false,
    agent: "test",
  };
}

export function testSite(name: string, slots = 50): Omit<SiteInput, "atMs"> {
  return {
    name,
    resources: { slots, memoryPerSlotMb: 4000, diskMb: 1_000_000, walltimeSec: { min: 0, max: 86_400 } },
  };
}

export interface GridFixture {
  node: ServerNode;
  dataDir: string;
  startPilot(site: string, flags?: string[]): PilotProcess & { workdir: string };
  pilots: PilotProcess[];
  restart(): Promise<ServerNode>;
}

/** The embedded store, or Redis under a key prefix of the test's own. */
export type GridStore = "embedded" | "Redis";

/**
 * A real server node on port 0 and real pilot processes against it; all torn
 * down after each test (on Redis, its keys too), and the pilots' logs printed
 * when a test fails.
 */
export function useGrid(): (
  sites: string[],
  extra?: Partial<ServerNodeOptions>,
  store?: GridStore,
) => Promise<GridFixture> {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return async (sites, extra = {}, store = "embedded") => {
    let redisOptions: Partial<ServerNodeOptions> = {};
    if (store === "Redis") {
      const redisUrl = await getRedisUrl();
      const redisPrefix = uniquePrefix("e2e-grid");
      redisOptions = { redisUrl, redisPrefix };
      // Pushed first, so it runs last: after the node has closed and written its last key.
      cleanups.push(() => cleanupPrefixAt(redisUrl, redisPrefix));
    }
    const dataDir = mkdtempSync(join(tmpdir(), "panda-e2e-"));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const options: ServerNodeOptions = {
      port: 0,
      dataDir,
      sites: sites.map((s) => testSite(s)),
      tokens: [
        { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
        { token: OTHER_USER_TOKEN, kind: "user", user: "mallory", role: "user" },
        ...sites.map((site) => ({ token: pilotToken(site), kind: "pilot" as const, site })),
      ],
      heartbeatMs: 500,
      pingIntervalMs: 1000,
      ...redisOptions,
      ...extra,
    };
    let node = await startServerNode(options);
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await node.close();
    });
    const pilots: PilotProcess[] = [];
    onTestFailed(() => {
      for (const [i, p] of pilots.entries())
        process.stderr.write(`--- pilot ${i} log ---\n${p.log.slice(-4000)}\n`);
    });
    const fixture: GridFixture = {
      get node() {
        return node;
      },
      dataDir,
      pilots,
      startPilot(site, flags = ["--multitask", "--stay"]) {
        const workdir = mkdtempSync(join(tmpdir(), "panda-e2e-pilot-"));
        const pilot = new PilotProcess(
          ["--server", node.url, "--site", site, "--workdir", workdir, ...flags],
          {
            ...process.env,
            PANDA_PILOT_TOKEN: pilotToken(site),
          },
        );
        pilots.push(pilot);
        Object.assign(pilot, { workdir });
        cleanups.push(async () => {
          await pilot.stop();
          rmSync(workdir, { recursive: true, force: true });
        });
        return pilot as PilotProcess & { workdir: string };
      },
      async restart() {
        const port = Number(new URL(node.url).port);
        await node.close();
        closed = true;
        node = await startServerNode({ ...options, port });
        closed = false;
        return node;
      },
    };
    return fixture;
  };
}

export async function api(node: ServerNode, path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
  const url = `${node.url}${path}`;
  const res = await fetch(url, { ...init, headers }).catch((err: unknown) => {
    // A pooled keep-alive socket to a node restarted on the same port may not have read the old
    // node's FIN yet; a browser retries an idempotent request on a fresh connection then, and so do we.
    const idempotent = (init.method ?? "GET") === "GET";
    if (!idempotent || (err as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw err;
    return fetch(url, { ...init, headers });
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Submits a task as the fixture's user through the API and expects it accepted. */
export async function submitTask(node: ServerNode, body: object): Promise<void> {
  const res = await api(node, "/api/v1/tasks", {
    method: "POST",
    token: USER_TOKEN,
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
}
