import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { redisBinariesAvailable, reportUnavailable } from "../support/redis-process.js";
import { PandaUp, processesWith, readJsonIfComplete, runPanda, until } from "./panda-process.js";

interface LocalConfig {
  server: string;
  token: string;
}

const canRunCluster = redisBinariesAvailable();
if (!canRunCluster) reportUnavailable("Redis Cluster (no redis-server/redis-cli binary)");

describe.skipIf(!canRunCluster)("panda up --nodes 3 --redis-cluster", () => {
  let workDir: string;
  let dataDir: string;
  let up: PandaUp;
  let config: LocalConfig;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), "panda-cli-up-nodes-"));
    dataDir = join(workDir, ".panda");
    up = new PandaUp(
      ["--nodes", "3", "--redis-cluster", "--port", "0", "--data-dir", dataDir, "--pilots-per-site", "1"],
      workDir,
    );
    config = (await until(
      () => readJsonIfComplete(join(dataDir, "local.json")),
      60_000,
      "panda up to write local.json",
    )) as LocalConfig;
  }, 90_000);

  afterAll(async () => {
    await up.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  function printUpOutputOnFailure(): void {
    onTestFailed(() => {
      process.stderr.write(`--- panda up stdout ---\n${up.stdout}\n--- stderr ---\n${up.stderr}\n`);
    });
  }

  const nodeUrls = () => [...up.stdout.matchAll(/node-\d\s+(http:\/\/\S+)\s+monitor (http:\/\/\S+)/g)];

  it("prints each node's URL and monitor, spreads the pilots over the nodes and runs the demo", async () => {
    printUpOutputOnFailure();
    await until(() => (nodeUrls().length === 3 ? true : undefined), 10_000, "three node lines");
    const urls = nodeUrls().map((m) => m[1]!);
    expect(nodeUrls().map((m) => m[2])).toEqual(urls.map((u) => `${u}/`));
    expect(new Set(urls).size).toBe(3);
    expect(config.server).toBe(urls[0]);
    expect(up.stdout).toMatch(/a 3-master Redis Cluster on ports \d+, \d+, \d+/);
    // Each node serves its own pilot: the k-th pilot starts at node k.
    const localPilots = async (url: string) => {
      const answer = (await (await fetch(`${url}/api/v1/pilots`)).json()) as {
        node: string;
        pilots: { node: string }[];
      };
      return answer.pilots.filter((p) => p.node === answer.node).length;
    };
    await until(
      async () => ((await Promise.all(urls.map(localPilots))).every((n) => n === 1) ? true : undefined),
      30_000,
      "one pilot on each node",
    );
    // The demo's tasks finish, whichever node is asked; the CLI reads them through the third node.
    const ended = await until(
      async () => {
        const response = await fetch(`${urls[2]}/api/v1/tasks`, {
          headers: { authorization: `Bearer ${config.token}` },
        });
        const { tasks } = (await response.json()) as { tasks: { state: string }[] };
        return tasks.length === 2 && tasks.every((t) => ["done", "failed", "aborted"].includes(t.state))
          ? tasks
          : undefined;
      },
      90_000,
      "the demo tasks to end",
    );
    expect(ended.map((t) => t.state)).toEqual(["done", "done"]);
    const listed = await runPanda(["jobs", "--json", "--server", urls[2]!, "--token", config.token], workDir);
    expect(listed.code, listed.stderr).toBe(0);
    const { jobs } = JSON.parse(listed.stdout) as { jobs: { state: string }[] };
    expect(new Set(jobs.map((j) => j.state))).toEqual(new Set(["finished"]));
  }, 150_000);

  it("Ctrl-C stops everything it started: pilots, nodes and the Redis Cluster", async () => {
    printUpOutputOnFailure();
    const redisPorts = /Redis Cluster on ports ([\d, ]+)/.exec(up.stdout)![1]!.split(", ");
    expect(processesWith(" pilot ", dataDir).length).toBe(3);
    expect(processesWith(" server ", dataDir).length).toBe(3);
    up.child.kill("SIGINT");
    expect(await up.exited).toEqual({ code: 0, signal: null });
    expect(up.stdout).toMatch(/stopped/);
    expect(processesWith(" pilot ", dataDir)).toEqual([]);
    expect(processesWith(" server ", dataDir)).toEqual([]);
    for (const port of redisPorts) expect(processesWith("redis-server", `:${port}`)).toEqual([]);
  }, 60_000);
});
