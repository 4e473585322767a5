import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConnection, writeLocalConfig } from "../../src/cli/config.js";
import { CliError, EXIT } from "../../src/cli/errors.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A working directory with `.panda/local.json` as `panda up` writes it, and a subdirectory below. */
function projectWithLocalConfig(server = "http://127.0.0.1:8080"): { root: string; nested: string } {
  const root = mkdtempSync(join(tmpdir(), "panda-cli-config-"));
  dirs.push(root);
  writeLocalConfig(join(root, ".panda"), { server, token: "local-admin-token-0001" });
  const nested = join(root, "a", "b");
  mkdirSync(nested, { recursive: true });
  return { root, nested };
}

describe("resolveConnection", () => {
  it("reads the nearest .panda/local.json, from the directory or below it", () => {
    const { root, nested } = projectWithLocalConfig();
    for (const cwd of [root, nested]) {
      expect(resolveConnection({}, {}, cwd)).toEqual({
        server: "http://127.0.0.1:8080",
        token: "local-admin-token-0001",
        serverSource: join(root, ".panda", "local.json"),
      });
    }
    expect(statSync(join(root, ".panda", "local.json")).mode & 0o777).toBe(0o600);
  });

  it("prefers flags to PANDA_SERVER / PANDA_TOKEN, and those to local.json", () => {
    const { root } = projectWithLocalConfig();
    const env = { PANDA_SERVER: "http://env:1/", PANDA_TOKEN: "env-token" };
    expect(resolveConnection({}, env, root)).toMatchObject({
      server: "http://env:1",
      token: "env-token",
      serverSource: "PANDA_SERVER",
    });
    expect(resolveConnection({ server: "http://flag:2", token: "flag-token" }, env, root)).toMatchObject({
      server: "http://flag:2",
      token: "flag-token",
      serverSource: "--server",
    });
  });

  it("never sends local.json's token to another server", () => {
    const { root } = projectWithLocalConfig();
    expect(resolveConnection({ server: "http://elsewhere:9" }, {}, root).token).toBeUndefined();
    expect(resolveConnection({ server: "http://127.0.0.1:8080/" }, {}, root).token).toBe(
      "local-admin-token-0001",
    );
  });

  it("finds local.json through PANDA_DATA_DIR", () => {
    const { root } = projectWithLocalConfig();
    const elsewhere = mkdtempSync(join(tmpdir(), "panda-cli-config-"));
    dirs.push(elsewhere);
    expect(resolveConnection({}, { PANDA_DATA_DIR: join(root, ".panda") }, elsewhere).server).toBe(
      "http://127.0.0.1:8080",
    );
  });

  it("fails with usage errors that say what to do", () => {
    const empty = mkdtempSync(join(tmpdir(), "panda-cli-config-"));
    dirs.push(empty);
    const attempt = (flags: { server?: string }, cwd = empty) => {
      try {
        resolveConnection(flags, {}, cwd);
      } catch (err) {
        return err as CliError;
      }
      throw new Error("expected a failure");
    };
    expect(attempt({})).toMatchObject({ exitCode: EXIT.usage, message: expect.stringContaining("panda up") });
    expect(attempt({ server: "ftp://x" })).toMatchObject({
      exitCode: EXIT.usage,
      message: expect.stringContaining("from --server ('ftp://x') must be an http or https URL"),
    });
    mkdirSync(join(empty, ".panda"));
    writeFileSync(join(empty, ".panda", "local.json"), '{"server":"http://x"}');
    const broken = attempt({});
    expect(broken).toBeInstanceOf(CliError);
    expect(broken.message).toMatch(/local\.json is not a panda local config \(token: .*\): delete it/);
  });
});
