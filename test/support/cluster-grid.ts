/**
 * A grid of `panda server` child processes on one Redis Cluster, with real
 * pilot processes spread over them: what the cluster acceptance tests run.
 * Nodes are asked everything over HTTP (they are other processes); shard
 * leases are read from Redis, where the nodes keep them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster } from "ioredis";
import { isJobOutcome } from "../../src/actors/shared/schemas.js";
import { freePort } from "../../src/cli/free-port.js";
import { ServerChild } from "../../src/cli/server-children.js";
import { actorKeyOf, shardOf } from "../../src/runtime/actor-ref.js";
import { ShardKeys } from "../../src/store/shard-keys.js";
import { pandaCommand, until } from "../cli/panda-process.js";
import { pilotToken, testSite, USER_TOKEN } from "../e2e/grid-fixture.js";
import { PilotProcess } from "../pilot/pilot-process.js";
import { cleanupPrefix, uniquePrefix } from "./redis.js";

export const GRID_SITE = "SITE-GRID";
export const SHARDS = 64;

export interface HistoryEntry {
  v: number;
  at: number;
  from: string | null;
  to: string;
  event: { type: string; pilotId?: string };
  refused?: { code: string; message: string };
}

export interface JobAnswer {
  job: { jobId: string; state: string; attempt: number };
  history: HistoryEntry[];
}

export interface ClusterGridOptions {
  nodes: number;
  pilotsPerNode: number;
  leaseMs: number;
  /** `--redis-wait-replicas`: 0 leaves it out. */
  waitReplicas?: number;
}

/** A job's history in a line, for a failed assertion: each event, where it went, and whether it was refused. */
export function describeHistory(history: readonly HistoryEntry[]): string {
  return history
    .map((h) => `${h.event.type}->${h.to}${h.refused ? ` (refused ${h.refused.code})` : ""}`)
    .join(", ");
}

/** The final transitions of a job's history: exactly one for a job that ended once. */
export function finalTransitions(history: readonly HistoryEntry[]): HistoryEntry[] {
  return history.filter((h) => !h.refused && isJobOutcome(h.to.split(".")[0]!));
}

export class ClusterGrid {
  readonly nodes: ServerChild[] = [];
  readonly pilots: PilotProcess[] = [];
  /** Which node each node process is in the runtime (`/healthz`'s `node`). */
  readonly nodeIds: string[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];

  private constructor(
    readonly prefix: string,
    private readonly admin: Cluster,
  ) {}

  /** Starts the nodes, waits until they share the shards, then the pilots, until each node holds its own. */
  static async start(seeds: string, admin: Cluster, options: ClusterGridOptions): Promise<ClusterGrid> {
    const grid = new ClusterGrid(uniquePrefix("cluster-grid"), admin);
    grid.cleanups.push(() => cleanupPrefix(admin, grid.prefix));
    const dir = mkdtempSync(join(tmpdir(), "panda-cluster-grid-"));
    grid.cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const sites = join(dir, "sites.json");
    const tokens = join(dir, "tokens.json");
    writeFileSync(sites, JSON.stringify({ sites: [testSite(GRID_SITE)] }));
    writeFileSync(
      tokens,
      JSON.stringify({
        tokens: [
          { token: USER_TOKEN, kind: "user", user: "alice", role: "user" },
          { token: pilotToken(GRID_SITE), kind: "pilot", site: GRID_SITE },
        ],
      }),
    );
    const args = ["--data-dir", join(dir, "data"), "--redis", seeds, "--redis-prefix", grid.prefix];
    args.push(
      "--sites",
      sites,
      "--tokens",
      tokens,
      "--lease-ms",
      String(options.leaseMs),
      "--log-level",
      "warn",
    );
    if (options.waitReplicas) args.push("--redis-wait-replicas", String(options.waitReplicas));
    for (let i = 0; i < options.nodes; i++) {
      const name = `node-${i + 1}`;
      const port = await freePort();
      const node = new ServerChild(
        { name, port, args, logPath: join(dir, `${name}.log`) },
        pandaCommand(),
        "127.0.0.1",
      );
      grid.nodes.push(node);
      grid.cleanups.push(() => node.stop());
    }
    const healths = await Promise.all(grid.nodes.map((node) => node.healthy(60_000)));
    grid.nodeIds.push(...healths.map((h) => h.node));
    await grid.untilShardsShared(grid.nodes, 60_000);
    const urls = grid.nodes.map((n) => n.url);
    for (let i = 0; i < options.nodes; i++) {
      // Each pilot knows every node and starts at its own, so the pilots spread over the nodes.
      const servers = [...urls.slice(i), ...urls.slice(0, i)].join(",");
      for (let p = 0; p < options.pilotsPerNode; p++) {
        const workdir = mkdtempSync(join(dir, "pilot-"));
        const pilot = new PilotProcess(
          ["--server", servers, "--site", GRID_SITE, "--workdir", workdir, "--stay"],
          {
            ...process.env,
            PANDA_PILOT_TOKEN: pilotToken(GRID_SITE),
          },
        );
        grid.pilots.push(pilot);
        grid.cleanups.push(() => pilot.stop());
      }
    }
    await until(
      async () => {
        const counts = await Promise.all(grid.nodes.map((n) => grid.localPilots(n)));
        return counts.every((c) => c.length === options.pilotsPerNode) ? true : undefined;
      },
      60_000,
      "every node's pilots connected",
    );
    return grid;
  }

  async stop(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  }

  /** The last lines of every node's log, for a failing test. */
  logs(): string {
    const tail = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").slice(-3000) : "(no log)");
    return [
      ...this.nodes.map((n) => `--- ${n.spec.name} ---\n${tail(n.spec.logPath)}`),
      ...this.pilots.map((p, i) => `--- pilot ${i} ---\n${p.log.slice(-2000)}`),
    ].join("\n");
  }

  /** Resolves once `nodes` hold every shard between them, each some; how long it took. */
  async untilShardsShared(nodes: readonly ServerChild[], timeoutMs: number): Promise<number> {
    const startedMs = Date.now();
    await until(
      async () => {
        const owned = (await Promise.all(nodes.map((n) => n.health()))).map((h) => h?.shards ?? 0);
        return owned.every((n) => n > 0) && owned.reduce((a, b) => a + b, 0) === SHARDS ? true : undefined;
      },
      timeoutMs,
      "the shards shared",
    );
    return Date.now() - startedMs;
  }

  /** The ids of the pilots whose socket is on `node`, as the node itself says. */
  async localPilots(node: ServerChild): Promise<string[]> {
    const answer = (await this.get(node, "/api/v1/pilots")) as {
      node: string;
      pilots: { pilotId: string; node: string }[];
    };
    return answer.pilots.filter((p) => p.node === answer.node).map((p) => p.pilotId);
  }

  /** Each pilot's node (index in `nodes`) now. */
  async pilotNodes(): Promise<Map<string, number>> {
    const byPilot = new Map<string, number>();
    const lists = await Promise.all(this.nodes.map((n) => (n.running ? this.localPilots(n) : [])));
    lists.forEach((ids, i) => {
      for (const id of ids) byPilot.set(id, i);
    });
    return byPilot;
  }

  /** The node (index in `nodes`) holding each shard's lease now, read from Redis. */
  async shardOwners(): Promise<number[]> {
    const owners = await Promise.all(
      Array.from({ length: SHARDS }, (_, shard) =>
        this.admin.hget(new ShardKeys(this.prefix, shard).lease, "owner"),
      ),
    );
    return owners.map((owner) => this.nodeIds.indexOf(owner ?? ""));
  }

  async get(node: ServerChild, path: string): Promise<unknown> {
    const response = await fetch(`${node.url}${path}`, {
      headers: { authorization: `Bearer ${USER_TOKEN}` },
    });
    if (!response.ok)
      throw new Error(`GET ${path} on ${node.spec.name}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  async post(node: ServerChild, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${node.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${USER_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  /**
   * A task of `jobs` jobs running `command`. A job the site's queue cap turns
   * away tries again within half a second rather than the default minute, and
   * as often as it takes: the tests measure the nodes, not brokerage's pacing.
   */
  async submit(node: ServerChild, taskId: string, jobs: number, command: string[]): Promise<void> {
    const answer = await this.post(node, "/api/v1/tasks", {
      taskId,
      jobs,
      payload: { command },
      watchdogs: { rebrokerMs: 500, maxBrokerageTries: 100_000 },
    });
    if (answer.status !== 201)
      throw new Error(`submit ${taskId}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  /** Every job of the task, every attempt. */
  async jobs(
    node: ServerChild,
    taskId: string,
  ): Promise<{ jobId: string; state: string; attempt: number }[]> {
    const answer = (await this.get(node, `/api/v1/jobs?task=${taskId}&limit=10000`)) as {
      jobs: { jobId: string; state: string; attempt: number }[];
    };
    return answer.jobs;
  }

  /** A job's state and whole history (the jobs route keeps the last 200 entries; a job retried by pilots may have more). */
  async job(node: ServerChild, jobId: string): Promise<JobAnswer> {
    const view = (await this.get(node, `/api/v1/actors/job/${jobId}?history=10000`)) as {
      state: string;
      context: { attempt?: number };
      history: HistoryEntry[];
    };
    return {
      job: { jobId, state: view.state.split(".")[0]!, attempt: view.context.attempt ?? 1 },
      history: view.history,
    };
  }

  async task(node: ServerChild, taskId: string): Promise<{ state: string; counts: Record<string, number> }> {
    return (await this.get(node, `/api/v1/tasks/${taskId}`)) as {
      state: string;
      counts: Record<string, number>;
    };
  }

  /** Resolves once the task is done, asked of `node`; throws if it ends otherwise. */
  async untilTaskDone(node: ServerChild, taskId: string, timeoutMs: number): Promise<void> {
    const state = await until(
      async () => {
        const now = (await this.task(node, taskId).catch(() => null))?.state ?? "unknown";
        return ["done", "failed", "aborted", "finished"].includes(now) ? now : undefined;
      },
      timeoutMs,
      `task ${taskId} to end`,
    );
    if (state !== "done") throw new Error(`task ${taskId} ended ${state}`);
  }
}

/** The shard of a job. */
export function jobShard(jobId: string): number {
  return shardOf(actorKeyOf({ kind: "job", id: jobId }), SHARDS);
}
