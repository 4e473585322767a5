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
