import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { FactoryRow, PilotJobRow } from "../../src/cli/client.js";
import { parseFactoryConfig } from "../../src/factory/config.js";
import { PilotFactory } from "../../src/factory/factory.js";
import { until } from "../cli/panda-process.js";
import { api, pilotToken, USER_TOKEN, useGrid } from "../e2e/grid-fixture.js";
import { describeRates } from "./rates.js";
import { TcpGate } from "./tcp-gate.js";
import { factoryTestLog } from "./test-log.js";

const SITE = "SITE-T";

describe("throttling a queue whose pilots fail fast", () => {
  const grid = useGrid();
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("backs off exponentially with an incident, and recovers by itself once pilots succeed", async () => {
    const fixture = await grid([SITE]);
    const port = Number(new URL(fixture.node.url).port);
    const gate = await TcpGate.start(port);
    cleanups.push(() => gate.close());
    const dir = mkdtempSync(join(tmpdir(), "panda-factory-throttle-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "site.token"), pilotToken(SITE), { mode: 0o600 });
    const config = parseFactoryConfig(
      `
name: tf
server: ${fixture.node.url}
pilotServer: ${gate.url}
tokenFile: site.token
stateDir: state
pollSeconds: 0.2
node: ${process.execPath}
queues:
  - name: eats
    site: ${SITE}
    batchSystem: local
    maxQueued: 1
    maxRunning: 1
    pilot: { idleTimeoutSec: 1, callHomeTimeoutSec: 20 }
    throttle: { fastFailSec: 30, failuresToThrottle: 3, initialBackoffSec: 1, maxBackoffSec: 30 }
`,
      "throttle.yaml",
      dir,
    );
    const factory = new PilotFactory(config, { log: factoryTestLog });
    cleanups.push(() => factory.stop());
    await factory.start();
    const queueReport = async () =>
      ((await api(fixture.node, "/api/v1/factories/tf")).body as Partial<FactoryRow>).queues?.[0];
    await until(queueReport, 10_000, "the first report");
    const submitted = await api(fixture.node, "/api/v1/tasks", {
      method: "POST",
      token: USER_TOKEN,
      body: JSON.stringify({ jobs: 4, type: "production", site: SITE, payload: { command: ["true"] } }),
    });
    const taskId = submitted.body.taskId as string;

    const throttled = await until(
      async () => ((await queueReport())?.throttle.throttled ? await queueReport() : undefined),
      30_000,
      "the queue to be throttled",
    );
    expect(throttled!.throttle.reason).toMatch(/3 pilot jobs in a row failed within 30 s \(last: exit 10\)/);
    const throttledAtMs = Date.now();
    const submissions = async () =>
      ((await api(fixture.node, "/api/v1/pilot-jobs?factory=tf&limit=1000")).body.pilotJobs as PilotJobRow[])
        .map((j) => j.timestamps.submitting!)
        .sort((a, b) => a - b);
    // Probes while throttled: each waits for the last one's end, then a backoff twice as long.
    const after = await until(
      async () => {
        const times = (await submissions()).filter((t) => t > throttledAtMs);
        return times.length >= 2 ? times : undefined;
      },
      30_000,
      "two submissions while throttled",
    );
    const gapsSec = after.slice(1).map((t, i) => (t - after[i]!) / 1000);
    process.stdout.write(
      `local throttling: ${describeRates(await submissions(), throttledAtMs, Date.now())}\n`,
    );
    // The first probe failed too (a fourth fast failure): the next waits 2 s after it ended.
    expect(gapsSec[0]).toBeGreaterThanOrEqual(2);
    const incidents = await api(fixture.node, `/api/v1/incidents?source=factory&site=${SITE}`);
    expect((incidents.body.incidents as { message: string }[])[0]!.message).toMatch(
      /^factory tf throttles queue eats: .*one submission per \d+ s$/,
    );

    // The site comes back: the next probe's pilot reaches the server, runs the jobs and ends well.
    await gate.open();
    await until(
      async () => ((await queueReport())?.throttle.throttled === false ? true : undefined),
      60_000,
      "the queue to recover",
    );
    await until(
      async () =>
        (await api(fixture.node, `/api/v1/tasks/${taskId}`)).body.state === "done" ? true : undefined,
      60_000,
      "the task to be done",
    );
    const messages = (
      (await api(fixture.node, "/api/v1/incidents?source=factory")).body.incidents as { message: string }[]
    ).map((i) => i.message);
    expect(messages[0]).toBe("factory tf queue eats recovered: pilots succeed again");
  });
});
