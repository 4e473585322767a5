import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PilotJobRow } from "../../src/cli/client.js";
import { parseFactoryConfig } from "../../src/factory/config.js";
import { PilotFactory } from "../../src/factory/factory.js";
import { until } from "../cli/panda-process.js";
import { api, pilotToken, USER_TOKEN, useGrid } from "../e2e/grid-fixture.js";
import { factoryTestLog } from "./test-log.js";

const SITE = "SITE-F";

describe("the factory on the local batch system", () => {
  const grid = useGrid();
  const dirs: string[] = [];
  const factories: PilotFactory[] = [];
  afterEach(async () => {
    for (const factory of factories.splice(0)) await factory.stop();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function setUp() {
    const fixture = await grid([SITE]);
    const dir = mkdtempSync(join(tmpdir(), "panda-factory-local-"));
    dirs.push(dir);
    writeFileSync(join(dir, "site.token"), `${pilotToken(SITE)}\n`, { mode: 0o600 });
    const yaml = `
name: lf
server: ${fixture.node.url}
tokenFile: site.token
stateDir: state
pollSeconds: 0.3
node: ${process.execPath}
queues:
  - name: here
    site: ${SITE}
    batchSystem: local
    maxQueued: 3
    maxRunning: 3
    pilot: { idleTimeoutSec: 1, callHomeTimeoutSec: 20 }
`;
    const config = parseFactoryConfig(yaml, "test.yaml", dir);
    const factory = new PilotFactory(config, { log: factoryTestLog });
    factories.push(factory);
    const pilotJobs = async () =>
      ((await api(fixture.node, "/api/v1/pilot-jobs?factory=lf")).body.pilotJobs as PilotJobRow[]) ?? [];
    return { fixture, factory, pilotJobs, config };
  }

  it("submits nothing without work, covers a task's jobs with pilots, then lets them end and submits no more", async () => {
    const { fixture, factory, pilotJobs } = await setUp();
    await factory.start();
    await factory.pollOnce();
    await factory.pollOnce();
    expect(await pilotJobs()).toEqual([]);
    const submitted = await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({
        jobs: 8,
        type: "production",
        site: SITE,
        payload: { command: ["sh", "-c", "echo {jobId}"] },
      }),
    });
    expect(submitted.status).toBe(201);
    const taskId = submitted.body.taskId as string;
    await until(
      async () =>
        (await api(fixture.node, `/api/v1/tasks/${taskId}`)).body.state === "done" ? true : undefined,
      60_000,
      "the task to be done",
    );
    // Idle pilots time out and end; nothing replaces them.
    const ended = await until(
      async () => {
        const jobs = await pilotJobs();
        return jobs.length > 0 && jobs.every((j) => j.state === "done") ? jobs : undefined;
      },
      30_000,
      "every pilot job to end",
    );
    expect(ended.length).toBeGreaterThanOrEqual(1);
    expect(ended.length).toBeLessThanOrEqual(3);
    expect(ended.every((j) => j.exitCode === 0 && j.batchSystem === "local" && j.batchId !== null)).toBe(
      true,
    );
    await factory.pollOnce();
    await factory.pollOnce();
    expect(await pilotJobs()).toHaveLength(ended.length);
    const factoryView = (await api(fixture.node, "/api/v1/factories/lf")).body as {
      queues: { name: string; jobs: Record<string, number>; throttle: { throttled: boolean } }[];
    };
    expect(factoryView.queues).toMatchObject([
      { name: "here", jobs: { submitting: 0, queued: 0, running: 0 }, throttle: { throttled: false } },
    ]);
  });
});
