import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach } from "vitest";
import { refs } from "../../src/actors/shared/names.js";
import type { ServerNodeOptions } from "../../src/server/server.js";
import { type GridFixture, OTHER_USER_TOKEN, pilotToken, USER_TOKEN, useGrid } from "../e2e/grid-fixture.js";
import { cleanupPrefix, findRedisUrl, uniquePrefix } from "../support/redis.js";

export const OPERATOR_TOKEN = `operator-${randomBytes(12).toString("hex")}`;
export const ADMIN_TOKEN = `admin-${randomBytes(12).toString("hex")}`;
export { OTHER_USER_TOKEN, USER_TOKEN };

export const SITES = ["SITE-A", "SITE-B", "SITE-C"];
export const STORES = ["memory", "redis"] as const;
export type StoreName = (typeof STORES)[number];

/**
 * A server node with three sites and users alice (user), mallory (user), olga
 * (operator) and root (admin), on the embedded store or on Redis under a
 * unique prefix that is deleted after the test.
 */
export function useApiGrid(): (store: StoreName, extra?: Partial<ServerNodeOptions>) => Promise<GridFixture> {
  const grid = useGrid();
  const prefixes: string[] = [];
  afterEach(async () => {
    const url = await findRedisUrl();
    if (!url) return;
    const redis = new Redis(url);
    for (const prefix of prefixes.splice(0)) await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });
  return async (store, extra = {}) => {
    let storeOptions: Partial<ServerNodeOptions> = {};
    if (store === "redis") {
      const url = await findRedisUrl();
      if (!url) throw new Error("no Redis for the API tests");
      const prefix = uniquePrefix("api");
      prefixes.push(prefix);
      storeOptions = { redisUrl: url, redisPrefix: prefix, leaseMs: 2000 };
    }
    const fixture = await grid(SITES, {
      tokens: [
        { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
        { token: OTHER_USER_TOKEN, kind: "user", user: "mallory", role: "user" },
        { token: OPERATOR_TOKEN, kind: "user", user: "olga", role: "operator" },
        { token: ADMIN_TOKEN, kind: "user", user: "root", role: "admin" },
        ...SITES.map((site) => ({ token: pilotToken(site), kind: "pilot" as const, site })),
      ],
      ...storeOptions,
      ...extra,
    });
    // Brokerage skips sites whose pilots were never seen; these tests run without pilot processes.
    const atMs = Date.now();
    for (const site of SITES)
      await fixture.node.grid.runtime.send(refs.site(site), { type: "pilot.seen", pilotId: "p-test", atMs });
    return fixture;
  };
}
