import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TokenRegistry } from "../../src/server/tokens.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("TokenRegistry with a tokens file", () => {
  it("keeps only digests, and nodes sharing the data directory see each other's creations and revocations", () => {
    const dir = mkdtempSync(join(tmpdir(), "panda-tokens-"));
    dirs.push(dir);
    const path = join(dir, "tokens.json");
    const nodeA = new TokenRegistry([], path);
    const nodeB = new TokenRegistry([], path);
    const { token, principal } = nodeA.create({ kind: "user", user: "bob", role: "operator" }, "root", 1);
    expect(readFileSync(path, "utf8")).not.toContain(token);
    expect(nodeB.lookup(token)).toEqual(principal);
    expect(nodeA.revoke(principal.tokenId)).toBe(true);
    expect(nodeB.lookup(token)).toBeNull();
    expect(new TokenRegistry([], path).list()).toEqual([]);
  });
});

describe("token expiry", () => {
  it("opens nothing after its expiry, says when it expired, and keeps the expiry across nodes and restarts", () => {
    const dir = mkdtempSync(join(tmpdir(), "panda-tokens-"));
    dirs.push(dir);
    const path = join(dir, "tokens.json");
    const nodeA = new TokenRegistry([], path);
    const created = nodeA.create({ kind: "user", user: "ann", role: "user" }, "root", 1_000, 60_000);
    expect(created.expiresAtMs).toBe(61_000);
    const forever = nodeA.create({ kind: "user", user: "ann", role: "user" }, "root", 1_000);
    expect(forever.expiresAtMs).toBeNull();
    const nodeB = new TokenRegistry([], path);
    expect(nodeB.lookup(created.token, 60_999)).toEqual(created.principal);
    expect(nodeB.expiredAtMs(created.token, 60_999)).toBeNull();
    expect(nodeB.lookup(created.token, 61_000)).toBeNull();
    expect(nodeB.expiredAtMs(created.token, 61_000)).toBe(61_000);
    expect(nodeB.lookup(forever.token, 10 ** 15)).toEqual(forever.principal);
    expect(nodeB.expiredAtMs("panda_unknown_token_value", 61_000)).toBeNull();
    const listed = new TokenRegistry([], path).list();
    expect(listed.map((t) => t.expiresAtMs).sort()).toEqual([61_000, null].sort());
  });
});
