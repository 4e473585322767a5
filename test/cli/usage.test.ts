import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, runPanda } from "./panda-process.js";

/** A port nothing listens on: bound, noted, closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("panda's exit codes and messages without a server", () => {
  let emptyDir: string;

  beforeAll(() => {
    emptyDir = mkdtempSync(join(tmpdir(), "panda-cli-usage-"));
  });

  afterAll(() => {
    rmSync(emptyDir, { recursive: true, force: true });
  });

  it("a bad flag value exits 2 naming the flag", async () => {
    const run = await runPanda(["submit", "--priority", "high", "--", "true"], emptyDir);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--priority");
    expect(run.stderr).toContain("'high' is invalid");
  });

  it("an unknown flag, and conflicting flags, exit 2 naming them", async () => {
    const unknown = await runPanda(["submit", "--bogus", "--", "true"], emptyDir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
    const conflict = await runPanda(["submit", "--jobs", "2", "--input", "ds", "--", "true"], emptyDir);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toMatch(/--jobs.*cannot be used with.*--input/);
  });

  it("with no server configured, exits 2 saying how to configure one", async () => {
    const run = await runPanda(["jobs"], emptyDir);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "no server configured: run `panda up` here, or pass --server URL / set PANDA_SERVER",
    );
  });

  it("an unreachable server exits 1 naming the URL and where it came from", async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const run = await runPanda(
      ["jobs"],
      emptyDir,
      cleanEnv({ PANDA_SERVER: server, PANDA_TOKEN: "secret-token-x" }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot reach the server at ${server}`);
    expect(run.stderr).toContain("PANDA_SERVER");
    expect(run.stderr).not.toContain("secret-token-x");
  });
});
