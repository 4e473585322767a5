// A grid whose two sites keep their files on two real XRootD servers (SITE-A on one, SITE-B on the other), on Redis, for the end-to-end storage tests.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { type ServerNode, type ServerNodeOptions, startServerNode } from "../../src/server/server.js";
import type { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { runPandaHere } from "../cli/in-process.js";
import { cleanupPrefixAt, getRedisUrl, uniquePrefix } from "../support/redis.js";
import {
  startXrootd,
  useXrootdClientEnv,
  type XrootdServer,
  type XrootdServerOptions,
  xrootdAvailable,
} from "../support/xrootd.js";
import { type GridFixture, pilotToken, testSite, USER_TOKEN, useGrid } from "./grid-fixture.js";

export const XROOTD_SITES = ["SITE-A", "SITE-B"] as const;

export const inCi = process.env.CI === "true";
export const runXrootdTests = xrootdAvailable() || inCi;

export interface XrootdGrid extends GridFixture {
  servers: Record<(typeof XROOTD_SITES)[number], XrootdServer>;
  element(site: (typeof XROOTD_SITES)[number]): XrootdStorageElement;
  /** Where the nodes keep users' sandboxes: a directory of SITE-A's XRootD server. */
  sandboxElement(): XrootdStorageElement;
  /** `panda ARGS` as the fixture's user, against the first node or the one given. */
  panda(args: string[], node?: ServerNode): ReturnType<typeof runPandaHere>;
  /** Another node of the same grid (same Redis and prefix, same sites), with a data directory of its own. */
  addNode(): Promise<ServerNode & { dataDir: string }>;
}

/**
 * Starts the two XRootD servers once per file (each test keeps to its own
 * base path) and, per test, a node on Redis whose sites store there.
 */
export function useXrootdGrid(
  serverOptions: Partial<Record<(typeof XROOTD_SITES)[number], XrootdServerOptions>> = {},
): (extra?: Partial<ServerNodeOptions>) => Promise<XrootdGrid> {
  // Registered before useGrid's, so it runs after it (vitest runs after-hooks as a stack): the
  // fixture's node closes first, then added nodes, then the grid's keys go.
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const grid = useGrid();
  let servers: XrootdGrid["servers"] | undefined;
  let restoreEnv = () => {};
  let run = 0;
  beforeAll(async () => {
    if (!xrootdAvailable()) throw new Error("CI=true but xrootd is not installed: .ci/run installs it");
    restoreEnv = useXrootdClientEnv();
    const [a, b] = await Promise.all([
      startXrootd(serverOptions["SITE-A"]),
      startXrootd(serverOptions["SITE-B"]),
    ]);
    servers = { "SITE-A": a, "SITE-B": b };
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers ?? {}).map((s) => s.stop()));
    restoreEnv();
  });
  return async (extra = {}) => {
    const started = servers!;
    run += 1;
    const sites = XROOTD_SITES.map((name) => ({
      ...testSite(name),
      storage: { type: "xrootd" as const, endpoint: started[name].endpoint, basePath: `/run${run}/${name}` },
    }));
    // Sandboxes too are kept on XRootD (a directory of A's server of their own), as nodes that share nothing but Redis keep them.
    const sandboxStorage = {
      type: "xrootd" as const,
      endpoint: started["SITE-A"].endpoint,
      basePath: `/run${run}/sandboxes`,
    };
    const nodeExtra: Partial<ServerNodeOptions> = {
      ...extra,
      sandbox: { ...extra.sandbox, storage: extra.sandbox?.storage ?? sandboxStorage },
    };
    // The fixture's Redis prefix is chosen here, so that added nodes can join the same grid.
    const redisUrl = await getRedisUrl();
    const redisPrefix = uniquePrefix("e2e-xrootd");
    cleanups.push(() => cleanupPrefixAt(redisUrl, redisPrefix));
    const fixture = await grid([...XROOTD_SITES], { sites, redisUrl, redisPrefix, ...nodeExtra });
    const tokens = [
      { token: USER_TOKEN, kind: "user" as const, user: "alice", role: "user" as const },
      ...XROOTD_SITES.map((site) => ({ token: pilotToken(site), kind: "pilot" as const, site })),
    ];
    return Object.assign(fixture, {
      servers: started,
      element: (site: (typeof XROOTD_SITES)[number]) =>
        fixture.node.grid.ctx.storage.get(site) as XrootdStorageElement,
      sandboxElement: () => fixture.node.grid.ctx.storage.sandboxElement as XrootdStorageElement,
      panda: (args: string[], node: ServerNode = fixture.node) =>
        runPandaHere(args, { PANDA_SERVER: node.url, PANDA_TOKEN: USER_TOKEN }),
      async addNode() {
        const dataDir = mkdtempSync(join(tmpdir(), "panda-e2e-node-"));
        const node = await startServerNode({
          port: 0,
          dataDir,
          sites,
          tokens,
          redisUrl,
          redisPrefix,
          heartbeatMs: 500,
          ...nodeExtra,
        });
        cleanups.push(async () => {
          await node.close();
          rmSync(dataDir, { recursive: true, force: true });
        });
        return Object.assign(node, { dataDir });
      },
    });
  };
}

/** Every file under a directory, relative to it. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Files under `dir` holding any of the given byte strings (a file's content, a marker). */
export function filesHolding(dir: string, needles: readonly Buffer[]): string[] {
  return filesUnder(dir).filter((file) => {
    const content = readFileSync(join(dir, file));
    return needles.some((needle) => content.includes(needle));
  });
}

export function writeFiles(dir: string, files: Record<string, Buffer>): string[] {
  return Object.entries(files).map(([name, bytes]) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  });
}
