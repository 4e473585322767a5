import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/runtime/logger.js";
import { createdTokensKey, FileCreatedTokens, RedisCreatedTokens } from "../../src/server/created-tokens.js";
import { LocalNodeBus, RedisNodeBus } from "../../src/server/node-bus.js";
import { TokenRegistry } from "../../src/server/tokens.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";
import { pollUntil } from "../support/redis-process.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("TokenRegistry with a tokens file", () => {
  it("keeps only digests, and nodes sharing the data directory see each other's creations and revocations", async () => {
    const dir = mkdtempSync(join(tmpdir(), "panda-tokens-"));
    dirs.push(dir);
    const path = join(dir, "tokens.json");
    const nodeA = new TokenRegistry([], new FileCreatedTokens(path));
    const nodeB = new TokenRegistry([], new FileCreatedTokens(path));
    const { token, principal } = await nodeA.create(
      { kind: "user", user: "bob", role: "operator" },
      "root",
      1,
    );
    expect(readFileSync(path, "utf8")).not.toContain(token);
    expect(nodeB.lookup(token)).toEqual(principal);
    expect(await nodeA.revoke(principal.tokenId)).toBe(true);
    expect(nodeB.lookup(token)).toBeNull();
    expect(new TokenRegistry([], new FileCreatedTokens(path)).list()).toEqual([]);
  });
});

describe("token expiry", () => {
  it("opens nothing after its expiry, says when it expired, and keeps the expiry across nodes and restarts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "panda-tokens-"));
    dirs.push(dir);
    const path = join(dir, "tokens.json");
    const nodeA = new TokenRegistry([], new FileCreatedTokens(path));
    const created = await nodeA.create({ kind: "user", user: "ann", role: "user" }, "root", 1_000, 60_000);
    expect(created.expiresAtMs).toBe(61_000);
    const forever = await nodeA.create({ kind: "user", user: "ann", role: "user" }, "root", 1_000);
    expect(forever.expiresAtMs).toBeNull();
    const nodeB = new TokenRegistry([], new FileCreatedTokens(path));
    expect(nodeB.lookup(created.token, 60_999)).toEqual(created.principal);
    expect(nodeB.expiredAtMs(created.token, 60_999)).toBeNull();
    expect(nodeB.lookup(created.token, 61_000)).toBeNull();
    expect(nodeB.expiredAtMs(created.token, 61_000)).toBe(61_000);
    expect(nodeB.lookup(forever.token, 10 ** 15)).toEqual(forever.principal);
    expect(nodeB.expiredAtMs("panda_unknown_token_value", 61_000)).toBeNull();
    const listed = new TokenRegistry([], new FileCreatedTokens(path)).list();
    expect(listed.map((t) => t.expiresAtMs).sort()).toEqual([61_000, null].sort());
  });
});

describe("TokenRegistry on Redis, for nodes that share nothing else", () => {
  let url: string;
  let admin: Redis;
  const prefix = uniquePrefix("tokens");
  const opened: { close(): void | Promise<void> }[] = [];

  beforeAll(async () => {
    url = await getRedisUrl();
    admin = new Redis(url);
  });
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close();
  });
  afterAll(async () => {
    await cleanupPrefix(admin, prefix);
    admin.disconnect();
  });

  /** A node: its own connection, notices and copy of the created tokens. */
  async function node(options: { notices: boolean; refreshMs?: number }) {
    const client = new Redis(url);
    opened.push({ close: () => client.disconnect() });
    const bus = options.notices ? new RedisNodeBus(client, prefix, silentLogger) : new LocalNodeBus();
    opened.push(bus);
    const created = await RedisCreatedTokens.open({
      client,
      prefix,
      bus,
      log: silentLogger,
      refreshMs: options.refreshMs,
    });
    opened.push(created);
    return new TokenRegistry([], created);
  }

  it("opens a token created on one node on every other, keeps only its digest, and stops opening it once revoked anywhere", async () => {
    const nodeA = await node({ notices: true });
    const nodeB = await node({ notices: true, refreshMs: 60_000 });
    const { token, principal } = await nodeA.create({ kind: "pilot", site: "CERN" }, "root", Date.now());
    expect(nodeA.lookup(token)).toEqual(principal);
    // Node B's copy follows from the notice alone: its refresh is a minute away.
    await pollUntil(async () => nodeB.lookup(token) !== null, "node B to know the created token", 5_000);
    expect(nodeB.lookup(token)).toEqual(principal);
    const stored = Object.values(await admin.hgetall(createdTokensKey(prefix))).join("");
    expect(stored).not.toContain(token);
    expect(nodeB.list().map((t) => t.tokenId)).toEqual([principal.tokenId]);
    expect(await nodeB.revoke(principal.tokenId)).toBe(true);
    expect(nodeB.lookup(token)).toBeNull();
    await pollUntil(async () => nodeA.lookup(token) === null, "node A to forget the revoked token", 5_000);
    expect(await nodeA.revoke(principal.tokenId)).toBe(false);
  });

  it("catches up by its periodic read when it missed a notice, and a new node reads every created token at start", async () => {
    const nodeA = await node({ notices: true });
    const deaf = await node({ notices: false, refreshMs: 50 });
    const { token, principal } = await nodeA.create(
      { kind: "user", user: "ann", role: "operator" },
      "root",
      Date.now(),
    );
    await pollUntil(
      async () => deaf.lookup(token) !== null,
      "the node without notices to read the token",
      5_000,
    );
    expect(deaf.lookup(token)).toEqual(principal);
    const late = await node({ notices: false, refreshMs: 60_000 });
    expect(late.lookup(token)).toEqual(principal);
    await nodeA.revoke(principal.tokenId);
    await pollUntil(
      async () => deaf.lookup(token) === null,
      "the node without notices to forget the token",
      5_000,
    );
  });

  it("ignores a malformed entry on Redis instead of failing every lookup", async () => {
    const nodeA = await node({ notices: true });
    const { token } = await nodeA.create({ kind: "pilot", site: "BNL" }, "root", Date.now());
    await admin.hset(createdTokensKey(prefix), "f".repeat(64), "{not json");
    await admin.hincrby(createdTokensKey(prefix), "version", 1);
    const late = await node({ notices: false, refreshMs: 60_000 });
    expect(late.lookup(token)?.kind).toBe("pilot");
    expect(late.list()).toHaveLength(1);
  });
});
