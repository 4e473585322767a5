import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type { FactoryRow, PilotJobRow } from "../../src/cli/client.js";
import { cleanEnv, PandaDaemon, runPanda, until } from "../cli/panda-process.js";
import { pilotToken, testSite, USER_TOKEN } from "../e2e/grid-fixture.js";
import { type SlurmCluster, slurmAvailable, startSlurm } from "../support/slurm.js";
import { describeRates } from "./rates.js";

const SITE = "SITE-SLURM";
/** A site whose pilots cannot reach the server: its factory queue is throttled. */
const BAD_SITE = "SITE-EATS-PILOTS";
const inCi = process.env.CI === "true";
const FINAL = new Set(["done", "failed", "cancelled", "lost"]);

interface SqueueJob {
  job_id: number;
  name: string;
  job_state: string;
}

describe.skipIf(!slurmAvailable() && !inCi)("the factory on a real Slurm", () => {
  let slurm: SlurmCluster;
  let dir: string;
  let server: PandaDaemon;
  let serverUrl: string;
  let factory: PandaDaemon;
  const factoryEnv = () => cleanEnv({ ...slurm.env, PANDA_LOG_LEVEL: "info" });

  async function get<T>(path: string): Promise<T> {
    const res = await fetch(`${serverUrl}${path}`, { headers: { authorization: `Bearer ${USER_TOKEN}` } });
    return (await res.json()) as T;
  }
  const pilotJobs = async () =>
    (await get<{ pilotJobs: PilotJobRow[] }>("/api/v1/pilot-jobs?factory=sf&limit=5000")).pilotJobs;
  const queueReport = async () => (await get<Partial<FactoryRow>>("/api/v1/factories/sf")).queues?.[0];
  async function slurmJobs(): Promise<SqueueJob[]> {
    return (JSON.parse(await slurm.run("squeue", ["--json", "--states=all"])) as { jobs: SqueueJob[] }).jobs;
  }
  const squeueLines = async () => (await slurm.run("squeue", ["-h"])).trim();

  async function submitTask(jobs: number, command: string[], site = SITE): Promise<string> {
    const res = await fetch(`${serverUrl}/api/v1/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${USER_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ jobs, type: "production", site, payload: { command } }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { taskId: string }).taskId;
  }

  async function taskDone(taskId: string, timeoutMs: number) {
    return until(
      async () => {
        const task = await get<{ state: string; counts: Record<string, number> }>(`/api/v1/tasks/${taskId}`);
        return ["done", "finished", "failed", "aborted"].includes(task.state) ? task : undefined;
      },
      timeoutMs,
      `task ${taskId} to end`,
    );
  }

  function startFactory(): PandaDaemon {
    factory = new PandaDaemon(["factory", "--config", join(dir, "factory.yaml")], dir, factoryEnv());
    return factory;
  }

  /** Every pilot job ended, and Slurm runs and queues nothing. */
  async function quiet(): Promise<PilotJobRow[]> {
    return until(
      async () => {
        const jobs = await pilotJobs();
        if (!jobs.every((j) => FINAL.has(j.state))) return undefined;
        return (await squeueLines()) === "" ? jobs : undefined;
      },
      40_000,
      "every pilot job to end and squeue to be empty",
    );
  }

  beforeAll(async () => {
    if (!slurmAvailable())
      throw new Error("CI=true but slurm-wlm is not installed (or not root): .ci/run installs it");
    slurm = await startSlurm({ cpus: 4 });
    dir = mkdtempSync(join(tmpdir(), "panda-factory-slurm-"));
    writeFileSync(join(dir, "sites.json"), JSON.stringify({ sites: [testSite(SITE), testSite(BAD_SITE)] }));
    writeFileSync(
      join(dir, "tokens.json"),
      JSON.stringify({
        tokens: [
          { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
          { token: pilotToken(SITE), kind: "pilot", site: SITE },
          { token: pilotToken(BAD_SITE), kind: "pilot", site: BAD_SITE },
        ],
      }),
    );
    writeFileSync(join(dir, "site.token"), `${pilotToken(SITE)}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "bad-site.token"), `${pilotToken(BAD_SITE)}\n`, { mode: 0o600 });
    server = new PandaDaemon(
      [
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        join(dir, "server"),
        "--sites",
        join(dir, "sites.json"),
        "--tokens",
        join(dir, "tokens.json"),
      ],
      dir,
    );
    serverUrl = await until(
      () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(server.stdout)?.[1],
      20_000,
      "panda server to listen",
    );
    writeFileSync(
      join(dir, "factory.yaml"),
      `name: sf
server: ${serverUrl}
tokenFile: site.token
stateDir: factory-state
pollSeconds: 1
node: ${process.execPath}
queues:
  - name: debugq
    site: ${SITE}
    batchSystem: slurm
    partition: ${slurm.partition}
    walltimeSec: 600
    cores: 1
    memoryMb: 500
    maxQueued: 4
    maxRunning: 8
    pilot: { multitask: false, idleTimeoutSec: 3, callHomeTimeoutSec: 30 }
`,
    );
    startFactory();
    await until(queueReport, 20_000, "the factory's first report");
  }, 60_000);

  afterAll(async () => {
    await factory?.stop();
    await server?.stop();
    await slurm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function printOnFailure(): void {
    onTestFailed(async () => {
      process.stderr.write(
        `--- factory stdout ---\n${factory.stdout.slice(-6000)}\n--- stderr ---\n${factory.stderr.slice(-3000)}\n` +
          `--- server stderr ---\n${server.stderr.slice(-3000)}\n`,
      );
    });
  }

  it("runs a 40-job task with pilots it submits through sbatch, cancels the queued ones once no work is left, and leaves squeue empty", async () => {
    printOnFailure();
    expect(await pilotJobs()).toEqual([]);
    const taskId = await submitTask(40, ["sh", "-c", "sleep 0.3; echo {jobId}"]);
    const task = await taskDone(taskId, 90_000);
    expect(task).toMatchObject({ state: "done", counts: { finished: 40 } });
    const ended = await quiet();
    // Each record is one sbatch, and Slurm knows each by the record's id.
    const byName = new Map((await slurmJobs()).map((j) => [j.name, j]));
    for (const job of ended) expect(String(byName.get(job.id)?.job_id)).toBe(job.batchId);
    expect(byName.size).toBe(ended.length);
    const ran = ended.filter((j) => j.state === "done");
    const cancelled = ended.filter((j) => j.state === "cancelled");
    expect(ran.length).toBeGreaterThanOrEqual(1);
    expect(ran.every((j) => j.exitCode === 0)).toBe(true);
    expect(cancelled.length).toBeGreaterThanOrEqual(1);
    expect(
      cancelled.every(
        (j) => j.cancelReason === "demand dropped: no waiting job needs it" && !j.timestamps.running,
      ),
    ).toBe(true);
    expect(ran.length + cancelled.length).toBe(ended.length);
    // With no work left, polls go by and nothing is submitted.
    const reportedAtMs = (await queueReport())!.reportedAtMs!;
    await until(
      async () => ((await queueReport())!.reportedAtMs! > reportedAtMs + 3000 ? true : undefined),
      20_000,
      "three more polls",
    );
    expect(await pilotJobs()).toHaveLength(ended.length);
    process.stdout.write(
      `slurm: 40 jobs finished by ${ran.length} pilot jobs; ${cancelled.length} queued ones cancelled; squeue empty\n`,
    );
  });

  it("adopts its batch jobs after a SIGKILL and a restart: none submitted twice, none forgotten", async () => {
    printOnFailure();
    const before = new Set((await pilotJobs()).map((j) => j.id));
    const taskId = await submitTask(24, ["sh", "-c", "sleep 1; echo {jobId}"]);
    await until(
      async () => (((await queueReport())?.jobs.running ?? 0) >= 2 ? true : undefined),
      30_000,
      "two running pilot jobs",
    );
    factory.child.kill("SIGKILL");
    await factory.exited;
    const atKill = (await slurmJobs()).filter((j) => j.name.startsWith("sf.") && !before.has(j.name));
    expect(atKill.length).toBeGreaterThanOrEqual(2);
    startFactory();
    const task = await taskDone(taskId, 90_000);
    expect(task).toMatchObject({ state: "done", counts: { finished: 24 } });
    const ended = (await quiet()).filter((j) => !before.has(j.id));
    const all = (await slurmJobs()).filter((j) => j.name.startsWith("sf.") && !before.has(j.name));
    // Every batch job of this run has exactly one record, ended as Slurm ended it.
    expect(all.map((j) => j.name).sort()).toEqual(ended.map((j) => j.id).sort());
    expect(new Set(all.map((j) => j.name)).size).toBe(all.length);
    for (const job of atKill) {
      const record = ended.find((j) => j.id === job.name)!;
      expect(record.batchId).toBe(String(job.job_id));
      expect(["done", "cancelled"]).toContain(record.state);
    }
    const adopted = Number(/"adopted":(\d+)/.exec(factory.stdout)?.[1]);
    expect(adopted).toBeGreaterThanOrEqual(2);
    const listed = await runPanda(["sites", "--server", serverUrl, "--token", USER_TOKEN], dir);
    expect(listed.code, listed.stderr).toBe(0);
  });

  it("throttles a queue whose pilots cannot call home: the submission rate falls, and panda sites shows why", async () => {
    printOnFailure();
    writeFileSync(
      join(dir, "bad-factory.yaml"),
      `name: bf
server: ${serverUrl}
pilotServer: http://127.0.0.1:1
tokenFile: bad-site.token
stateDir: bad-factory-state
pollSeconds: 0.5
node: ${process.execPath}
queues:
  - name: badq
    site: ${BAD_SITE}
    batchSystem: slurm
    partition: ${slurm.partition}
    walltimeSec: 600
    memoryMb: 200
    maxQueued: 3
    maxRunning: 3
    throttle: { fastFailSec: 30, failuresToThrottle: 3, initialBackoffSec: 3, maxBackoffSec: 60 }
`,
    );
    const bad = new PandaDaemon(["factory", "--config", join(dir, "bad-factory.yaml")], dir, factoryEnv());
    try {
      const report = async () => (await get<Partial<FactoryRow>>("/api/v1/factories/bf")).queues?.[0];
      await until(report, 20_000, "the bad factory's first report");
      await submitTask(3, ["true"], BAD_SITE);
      const submissions = async () =>
        (await get<{ pilotJobs: PilotJobRow[] }>("/api/v1/pilot-jobs?factory=bf&limit=1000")).pilotJobs
          .map((j) => j.timestamps.submitting!)
          .sort((a, b) => a - b);
      const throttle = await until(
        async () => {
          const view = (await report())?.throttle;
          return view?.throttled ? view : undefined;
        },
        40_000,
        "the queue to be throttled",
      );
      const throttledAtMs = Date.now();
      const [probeAtMs] = await until(
        async () => {
          const times = (await submissions()).filter((t) => t > throttledAtMs);
          return times.length >= 1 ? times : undefined;
        },
        40_000,
        "a probe while throttled",
      );
      // The probe waited out the backoff from the failure that throttled the queue (Slurm's end times are whole seconds).
      expect(probeAtMs! - throttle.sinceMs!).toBeGreaterThanOrEqual(throttle.backoffSec * 1000 - 1000);
      const listed = await runPanda(["sites", "--server", serverUrl, "--token", USER_TOKEN], dir);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toMatch(/bf\s+badq\s+SITE-EATS-PILOTS\s+slurm\s+.*THROTTLED/);
      expect(listed.stdout).toContain("bf/badq throttled: ");
      expect(listed.stdout).toMatch(/pilot jobs in a row failed within 30 s \(last: exit 10\)/);
      expect(listed.stdout).toMatch(
        /factory incidents \(newest first\)\n.* warn factory bf throttles queue badq: /,
      );
      const incidents = await get<{ incidents: { message: string }[] }>(
        `/api/v1/incidents?source=factory&site=${BAD_SITE}`,
      );
      expect(incidents.incidents[0]!.message).toMatch(/^factory bf throttles queue badq: /);
      process.stdout.write(
        `slurm throttling: ${describeRates(await submissions(), throttledAtMs, Date.now())}\n`,
      );
    } finally {
      await bad.stop();
      await slurm.run("scancel", ["--user=root", "--name", ""]).catch(() => "");
    }
  });
});
