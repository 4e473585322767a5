import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FactoryConfigError, parseFactoryConfig } from "../../src/factory/config.js";
import { decide } from "../../src/factory/demand.js";
import { runPanda } from "../cli/panda-process.js";

const GOOD = `
name: f
server: http://127.0.0.1:8080
tokenFile: site.token
stateDir: state
queues:
  - name: q
    site: SITE-A
    batchSystem: slurm
    partition: debug
`;

function problems(yaml: string): string {
  try {
    parseFactoryConfig(yaml, "factory.yaml", "/etc/panda");
  } catch (err) {
    if (err instanceof FactoryConfigError) return err.message;
    throw err;
  }
  throw new Error("expected the configuration to be refused");
}

describe("the factory configuration", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "panda-factory-config-"));
    writeFileSync(join(dir, "site.token"), "a-site-pilot-token\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("fills defaults and resolves paths against the file's directory", () => {
    const config = parseFactoryConfig(GOOD, "factory.yaml", "/etc/panda");
    expect(config.stateDir).toBe("/etc/panda/state");
    expect(config.tokenFile).toBe("/etc/panda/site.token");
    expect(config.queues[0]).toMatchObject({
      pilotsPerJob: 1,
      maxQueued: 10,
      maxRunning: 100,
      pilot: { multitask: true },
    });
  });

  it("names every bad field", () => {
    expect(problems(GOOD.replace("batchSystem: slurm", "batchSystem: pbs"))).toContain(
      'queues[0].batchSystem: Invalid option: expected one of "slurm"|"local"',
    );
    expect(problems(`${GOOD}    maxQueued: -1\n`)).toContain("queues[0].maxQueued: Too small");
    expect(problems(GOOD.replace("    partition: debug\n", ""))).toContain(
      "queues[0].partition: is required for Slurm",
    );
    expect(problems(GOOD.replace("tokenFile: site.token\n", ""))).toContain(
      "queues[0].tokenFile: is required",
    );
    expect(problems(`${GOOD}    walltime: 10\n`)).toContain('queues[0]: Unrecognized key: "walltime"');
    expect(problems("queues: [")).toContain("factory.yaml is not YAML");
  });

  it("`panda factory` exits 2 naming the field, and --check prints the queues", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, GOOD.replace("batchSystem: slurm", "batchSystem: condor"));
    const refused = await runPanda(["factory", "--config", bad], dir);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("queues[0].batchSystem");
    const good = join(dir, "good.yaml");
    writeFileSync(good, GOOD);
    const checked = await runPanda(["factory", "--config", good, "--check"], dir);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain("q: slurm partition debug for SITE-A");
    const noToken = join(dir, "no-token.yaml");
    writeFileSync(noToken, GOOD.replace("site.token", "missing.token"));
    const missing = await runPanda(["factory", "--config", noToken, "--check"], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read its tokenFile");
  });
});

describe("the demand decision", () => {
  const caps = { maxQueued: 5, maxRunning: 8, pilotsPerJob: 2 };

  it("covers waiting jobs not covered by idle threads or queued pilots, within the caps", () => {
    expect(decide({ activated: 0, assigned: 0, idleThreads: 0 }, { queued: 0, running: 0 }, caps)).toEqual({
      submit: 0,
      cancel: 0,
    });
    expect(decide({ activated: 5, assigned: 2, idleThreads: 1 }, { queued: 1, running: 0 }, caps)).toEqual({
      submit: 2,
      cancel: 0,
    });
    expect(decide({ activated: 40, assigned: 0, idleThreads: 0 }, { queued: 0, running: 0 }, caps)).toEqual({
      submit: 5,
      cancel: 0,
    });
    expect(decide({ activated: 40, assigned: 0, idleThreads: 0 }, { queued: 1, running: 6 }, caps)).toEqual({
      submit: 1,
      cancel: 0,
    });
  });

  it("cancels queued jobs beyond what is missing, and never submits and cancels at once", () => {
    expect(decide({ activated: 0, assigned: 0, idleThreads: 3 }, { queued: 4, running: 2 }, caps)).toEqual({
      submit: 0,
      cancel: 4,
    });
    expect(decide({ activated: 3, assigned: 0, idleThreads: 0 }, { queued: 4, running: 0 }, caps)).toEqual({
      submit: 0,
      cancel: 2,
    });
  });
});
