import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readSandboxFile, readSharesFile, resolveServerConfig } from "../../src/cli/server-config.js";
import type { ServerNode } from "../../src/server/server.js";
import { ADMIN_TOKEN, OPERATOR_TOKEN, OTHER_USER_TOKEN, USER_TOKEN, useApiGrid } from "../api/api-fixture.js";
import { api } from "../e2e/grid-fixture.js";
import { until } from "../pilot/pilot-process.js";
import { runPandaHere } from "./in-process.js";
import { cleanEnv, runPanda } from "./panda-process.js";

const grid = useApiGrid();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "panda-cli-"));
  dirs.push(dir);
  return dir;
}

/** `panda ARGS` against the node, as the user with `token` (in this process: see in-process.ts). */
function panda(node: ServerNode, args: string[], token = USER_TOKEN) {
  return runPandaHere(args, { PANDA_SERVER: node.url, PANDA_TOKEN: token });
}

async function jobState(node: ServerNode, jobId: string): Promise<string | undefined> {
  const { body } = await api(node, `/api/v1/jobs/${jobId}`);
  return (body.job as { state?: string } | undefined)?.state;
}

describe("panda client verbs against a server", () => {
  it("inspect --at answers the state the job had then; why names the winner, a loser and its reason", async () => {
    const { node } = await grid("memory");
    const submitted = await panda(node, ["submit", "--jobs", "1", "--", "true"]);
    expect(submitted.code).toBe(0);
    const taskId = submitted.stdout.trim();
    const jobId = `${taskId}-0.1`;
    await until(async () => ((await jobState(node, jobId)) === "activated" ? true : undefined), 10_000);
    const why = await panda(node, ["why", "job", jobId]);
    expect(why.code).toBe(0);
    const site = /is activated at (SITE-\w)/.exec(why.stdout)?.[1];
    expect(site).toBeDefined();
    // Brokerage draws among the best sites by weight: why says so, never "below" for a higher score.
    expect(why.stdout).toMatch(
      new RegExp(`brokerage: ${site} was drawn at random among 3 candidates, each weighted by its score`),
    );
    expect(why.stdout).toMatch(
      new RegExp(`  ${site}: drawn \\(weight \\S+, chance [\\d.]+% of being drawn\\)`),
    );
    expect(
      why.stdout.match(/ {2}SITE-\w: not drawn \(weight \S+, chance [\d.]+% of being drawn\)/g),
    ).toHaveLength(2);
    expect(why.stdout).not.toMatch(/below/);
    expect(why.stdout).toMatch(/position 1 of 1 in the production queue/);
    expect((await panda(node, ["kill", "job", jobId], OTHER_USER_TOKEN)).code).toBe(3);
    expect((await panda(node, ["kill", "job", jobId, "--reason", "test"])).code).toBe(0);
    await until(async () => ((await jobState(node, jobId)) === "cancelled" ? true : undefined), 10_000);
    const history = JSON.parse((await panda(node, ["inspect", "job", jobId, "--json"])).stdout).history as {
      at: number;
      to: string;
    }[];
    const activated = history.find((h) => h.to === "activated")!;
    const past = await panda(node, [
      "inspect",
      "job",
      jobId,
      "--at",
      new Date(activated.at).toISOString(),
      "--json",
    ]);
    expect(JSON.parse(past.stdout)).toMatchObject({ state: "activated", at: activated.at });
    const now = await panda(node, ["inspect", "job", jobId]);
    expect(now.stdout).toMatch(/state: cancelled/);
    const missing = await panda(node, ["why", "job", "t-none-0.1"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/job t-none-0.1 does not exist/);
  });

  it("ds put, ls with a wildcard, get with checksums verified, subscribe", async () => {
    const { node } = await grid("memory");
    const src = tempDir();
    writeFileSync(join(src, "evt1.root"), "event data 1");
    writeFileSync(join(src, "evt2.root"), "event data 22");
    const put = await panda(node, [
      "ds",
      "put",
      "mc11.5.RDO.v1",
      join(src, "evt1.root"),
      join(src, "evt2.root"),
      "--site",
      "SITE-A",
    ]);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/2 file\(s\) stored at SITE-A/);
    await panda(node, ["ds", "put", "mc11.5.AOD.v1", join(src, "evt1.root"), "--site", "SITE-A"]);
    await until(
      async () =>
        ((await api(node, "/api/v1/datasets")).body.datasets as unknown[]).length === 2 || undefined,
      5000,
    );
    const ls = await panda(node, ["ds", "ls", "mc11.*RDO*"]);
    expect(ls.stdout).toMatch(/mc11\.5\.RDO\.v1\s+open\s+2\s+25 B\s+SITE-A/);
    expect(ls.stdout).not.toMatch(/AOD/);
    const dest = tempDir();
    const get = await panda(node, ["ds", "get", "mc11.5.RDO.v1", "--dest", dest, "--json"]);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout).files).toHaveLength(2);
    expect(readFileSync(join(dest, "evt2.root"), "utf8")).toBe("event data 22");
    const sub = await panda(node, ["ds", "subscribe", "mc11.5.RDO.v1", "SITE-C"]);
    expect(sub.stdout).toMatch(/mc11.5.RDO.v1@SITE-C: created, 2 file\(s\) to move/);
    const bad = await panda(node, ["ds", "put", "mc11.5.RDO.v1", join(src, "nope.root"), "--site", "SITE-A"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/cannot read .*nope.root: ENOENT/);
  });

  it("wait follows a task to its end with a real pilot; metrics count the dispatches", async () => {
    const fixture = await grid("memory");
    const { node } = fixture;
    fixture.startPilot("SITE-B");
    await until(() => (node.dispatcher.connectedPilots().length === 1 ? true : undefined), 20_000);
    const taskId = (
      await panda(node, ["submit", "--jobs", "3", "--site", "SITE-B", "--", "true"])
    ).stdout.trim();
    const wait = await panda(node, ["wait", taskId, "--timeout", "60", "--interval", "100"]);
    expect(wait.code).toBe(0);
    expect(wait.stdout).toMatch(new RegExp(`task ${taskId} done: 3/3 jobs finished, 0 failed`));
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/panda_dispatch_latency_seconds_count\{site="SITE-B"\} 3/);
    expect(metrics).toMatch(/panda_connected_pilots\{site="SITE-B"\} 1/);
    const pilots = (await api(node, "/api/v1/pilots?site=SITE-B")).body;
    expect(pilots).toMatchObject({ sites: [{ site: "SITE-B", connected: 1 }] });
    // A payload that fails: the pilot's report becomes an incident, and why says what the retry policy does.
    const badId = (
      await panda(node, [
        "submit",
        "--jobs",
        "1",
        "--site",
        "SITE-B",
        "--",
        "sh",
        "-c",
        "echo disk quota exceeded on /scratch; exit 3",
      ])
    ).stdout.trim();
    expect((await panda(node, ["wait", badId, "--timeout", "60", "--interval", "100"])).code).toBe(5);
    const incidents = (await api(node, `/api/v1/incidents?jobId=${badId}-0.1`)).body.incidents as {
      source: string;
      errorClass: string;
    }[];
    expect(incidents[0]).toMatchObject({ source: "pilot", errorClass: "payload" });
    const why = await panda(node, ["why", "job", `${badId}-0.1`]);
    expect(why.stdout).toMatch(/ended failed: payload/);
    expect(why.stdout).toMatch(/no retry: error class payload is not retried/);
    expect(why.stdout).toMatch(/log tail:\n(.*\n)* {2}disk quota exceeded on \/scratch/);
    // A task killed before it ran ends aborted: wait exits 5.
    const failing = await panda(node, ["submit", "--jobs", "1", "--memory", "999999", "--", "true"]);
    const failingId = failing.stdout.trim();
    await api(node, `/api/v1/tasks/${failingId}/kill`, { method: "POST", token: USER_TOKEN, body: "{}" });
    const ended = await panda(node, ["wait", failingId, "--timeout", "30", "--interval", "100"]);
    expect(ended.code).toBe(5);
    expect(ended.stderr).toMatch(/ended aborted/);
  });

  it("tokens, sites and tasks: roles enforced, errors name the fix", async () => {
    const { node } = await grid("memory");
    const denied = await panda(
      node,
      ["token", "create", "--role", "operator", "--user", "bob"],
      OPERATOR_TOKEN,
    );
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/needs the admin role/);
    expect((await panda(node, ["token", "create", "--role", "operator"], ADMIN_TOKEN)).code).toBe(2);
    const created = await panda(
      node,
      ["token", "create", "--role", "operator", "--user", "bob", "--json"],
      ADMIN_TOKEN,
    );
    const bob = JSON.parse(created.stdout).token as string;
    const badTtl = await panda(
      node,
      ["token", "create", "--role", "user", "--user", "ed", "--ttl", "soon"],
      ADMIN_TOKEN,
    );
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toMatch(/--ttl/);
    const expiring = await panda(
      node,
      ["token", "create", "--role", "user", "--user", "ed", "--ttl", "30d"],
      ADMIN_TOKEN,
    );
    expect(expiring.code).toBe(0);
    expect(expiring.stdout).toMatch(/expires \d{4}-\d\d-\d\d/);
    const ls = await panda(node, ["token", "ls"], ADMIN_TOKEN);
    expect(ls.stdout).toMatch(/operator\s+-\s+api/);
    expect(ls.stdout).toMatch(/ed\s+user\s+-\s+api\s+\S+\s+\S+\s+\d{4}-/);
    expect(ls.stdout).not.toContain(bob);
    const status = await panda(node, ["sites", "status", "SITE-B", "offline", "--reason", "downtime"], bob);
    expect(status.code).toBe(0);
    expect((await panda(node, ["sites", "status", "SITE-B", "online"], bob)).code).toBe(2);
    expect(
      (await panda(node, ["sites", "status", "SITE-B", "online", "--reason", "back"], USER_TOKEN)).code,
    ).toBe(3);
    const sites = await panda(node, ["sites"]);
    expect(sites.stdout).toMatch(/SITE-B\s+offline/);
    const taskId = (await panda(node, ["submit", "--jobs", "2", "--", "true"])).stdout.trim();
    expect((await panda(node, ["tasks"])).stdout).toMatch(
      new RegExp(`${taskId}\\s+\\w+\\s+alice\\s+production\\s+2`),
    );
    expect((await panda(node, ["tasks", taskId])).stdout).toMatch(/progress: 0\/2 jobs ended/);
    const noToken = await runPanda(["kill", "task", taskId], tempDir(), cleanEnv({ PANDA_SERVER: node.url }));
    expect(noToken.stdout).toBe("");
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toMatch(/pass --token or set PANDA_TOKEN/);
  });

  it("reassign and sites drain: operators only, arguments checked before anything is sent", async () => {
    const { node } = await grid("memory");
    const taskId = (await panda(node, ["submit", "--jobs", "1", "--", "true"])).stdout.trim();
    const jobId = `${taskId}-0.1`;
    await until(async () => ((await jobState(node, jobId)) === "activated" ? true : undefined), 10_000);
    const byUser = await panda(node, ["reassign", "job", jobId]);
    expect(byUser.code).toBe(3);
    expect(byUser.stderr).toMatch(/needs the operator or admin role/);
    const badSite = await panda(node, ["reassign", "job", jobId, "--site", "no site!"], OPERATOR_TOKEN);
    expect(badSite.code).toBe(2);
    expect(badSite.stderr).toMatch(/--site/);
    expect((await panda(node, ["reassign", "jobs", jobId], OPERATOR_TOKEN)).code).toBe(2);
    const moved = await panda(
      node,
      ["reassign", "job", jobId, "--site", "SITE-C", "--reason", "move"],
      OPERATOR_TOKEN,
    );
    expect(moved).toMatchObject({ code: 0, stdout: `${jobId}: reassigned, next attempt ${taskId}-0.2\n` });
    await until(
      async () => ((await jobState(node, `${taskId}-0.2`)) === "activated" ? true : undefined),
      10_000,
    );
    const task = await panda(node, ["reassign", "task", taskId, "--json"], OPERATOR_TOKEN);
    expect(JSON.parse(task.stdout)).toMatchObject({ reassigned: [{ jobId: `${taskId}-0.2` }] });
    expect((await panda(node, ["sites", "drain", "SITE-A"])).code).toBe(3);
    const drained = await panda(node, ["sites", "drain", "SITE-A", "--reason", "update"], OPERATOR_TOKEN);
    expect(drained).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/site SITE-A: drain sent to 0 pilot/),
    });
    expect((await panda(node, ["sites", "drain", "SITE-Z"], OPERATOR_TOKEN)).code).toBe(4);
  });

  it("sim and bench hand over to their programs; unknown names are usage errors", async () => {
    const sim = await runPandaHere(["sim", "--help"], {});
    expect(sim).toMatchObject({ code: 0, stdout: expect.stringMatching(/usage: panda sim SCENARIO/) });
    const bench = await runPandaHere(["bench", "nope"], {});
    expect(bench.code).toBe(2);
    expect(bench.stderr).toMatch(/unknown benchmark 'nope': choose runtime or dispatch/);
  });

  it("panda server: flags and PANDA_* environment through one schema", async () => {
    expect(
      resolveServerConfig({ port: "9090" }, { PANDA_PORT: "1", PANDA_LOG_LEVEL: "debug" }),
    ).toMatchObject({
      port: 9090,
      logLevel: "debug",
      readRequiresToken: false,
    });
    expect(() => resolveServerConfig({}, { PANDA_PORT: "http" })).toThrow(/--port \/ \$PANDA_PORT: /);
    expect(() => resolveServerConfig({ logLevel: "loud" }, {})).toThrow(/--log-level \/ \$PANDA_LOG_LEVEL/);
    expect(resolveServerConfig({}, { PANDA_READ_REQUIRES_TOKEN: "false" }).readRequiresToken).toBe(false);
    expect(
      resolveServerConfig(
        { redisUrl: "redis://r:1" },
        { PANDA_REDIS_WAIT_REPLICAS: "1", PANDA_LEASE_MS: "3000" },
      ),
    ).toMatchObject({ redisWaitReplicas: 1, leaseMs: 3000 });
    expect(() => resolveServerConfig({ redisWaitReplicas: "1" }, {})).toThrow(
      /--redis-wait-replicas \/ \$PANDA_REDIS_WAIT_REPLICAS: waits for Redis replicas: it needs --redis/,
    );
    expect(() => resolveServerConfig({ leaseMs: "10" }, {})).toThrow(
      /--lease-ms \/ \$PANDA_LEASE_MS: Too small/,
    );
    const dir = tempDir();
    writeFileSync(
      join(dir, "tokens.yaml"),
      `tokens:\n  - {token: ${ADMIN_TOKEN}, kind: user, user: root, role: admin}\n`,
    );
    writeFileSync(
      join(dir, "sites.yaml"),
      "sites:\n  - name: BNL\n    resources: {slots: 10, memoryPerSlotMb: 2000, diskMb: 100000, walltimeSec: {min: 0, max: 86400}}\n",
    );
    writeFileSync(
      join(dir, "shares.yaml"),
      "fairShare:\n  shares:\n    - {name: prod, percent: 70, match: {types: [production]}}\n    - {name: rest, percent: 30}\n",
    );
    writeFileSync(join(dir, "bad-shares.yaml"), "fairShare:\n  shares:\n    - {name: prod, percent: 90}\n");
    expect(() => readSharesFile(join(dir, "bad-shares.yaml"))).toThrow(
      /bad-shares\.yaml is not a shares file: fairShare\.shares: .*add up to 90, not 100/,
    );
    writeFileSync(
      join(dir, "sandbox.yaml"),
      "sandbox:\n  maxBytes: 2048\n  retentionMs: 3600000\n  storage: {type: local, path: sandboxes-here}\n",
    );
    writeFileSync(join(dir, "bad-sandbox.yaml"), "sandbox:\n  maxBytes: -1\n  storage: {type: tape}\n");
    expect(() => readSandboxFile(join(dir, "bad-sandbox.yaml"))).toThrow(
      /bad-sandbox\.yaml is not a sandbox file: sandbox\.maxBytes: .*sandbox\.storage\.type/,
    );
    const { spawn } = await import("node:child_process");
    const child = spawn(
      process.execPath,
      [
        "--import",
        import.meta.resolve("tsx"),
        new URL("../../src/cli/main.ts", import.meta.url).pathname,
        "server",
        "--port",
        "0",
      ],
      {
        cwd: dir,
        env: cleanEnv({
          PANDA_HOST: "127.0.0.1",
          PANDA_TOKENS_FILE: "tokens.yaml",
          PANDA_SITES_FILE: "sites.yaml",
          PANDA_SHARES_FILE: "shares.yaml",
          PANDA_SANDBOX_FILE: "sandbox.yaml",
          PANDA_LOG_LEVEL: "info",
        }),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    const url = await until(() => /"url":"(http:[^"]+)"/.exec(out)?.[1], 20_000);
    const whoami = await (
      await fetch(`${url}/api/v1/whoami`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json();
    expect(whoami).toMatchObject({ principal: { user: "root", role: "admin" } });
    const sites = (await (await fetch(`${url}/api/v1/sites`)).json()) as { sites: { name: string }[] };
    expect(sites.sites.map((s) => s.name)).toEqual(["BNL"]);
    const bnl = (await (await fetch(`${url}/api/v1/sites/BNL`)).json()) as {
      shares: { name: string; targetPercent: number }[];
    };
    expect(bnl.shares.map((s) => [s.name, s.targetPercent])).toEqual([
      ["prod", 70],
      ["rest", 30],
    ]);
    const probe = await fetch(`${url}/sandboxes/${"0".repeat(64)}`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(probe.status).toBe(404);
    expect(probe.headers.get("x-panda-sandbox-max-bytes")).toBe("2048");
    expect(statSync(join(dir, "sandboxes-here")).isDirectory()).toBe(true);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const firstLine = JSON.parse(out.split("\n")[0]!);
    expect(firstLine).toHaveProperty("level");
  });
});
