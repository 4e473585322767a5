import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface BenchRedis {
  url: string;
  /** What the figures were measured against, printed with them. */
  description: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * How often the private server fsyncs its AOF: `everysec` (Redis's durable
 * default: a power cut loses up to a second of acknowledged writes) or
 * `always` (before every reply: nothing acknowledged is lost), from
 * PANDA_BENCH_APPENDFSYNC, so the cost of closing that window is measured.
 */
function appendfsync(): "everysec" | "always" {
  const value = process.env.PANDA_BENCH_APPENDFSYNC ?? "everysec";
  if (value !== "everysec" && value !== "always")
    throw new Error(`PANDA_BENCH_APPENDFSYNC must be everysec or always, not ${value}`);
  return value;
}

/**
 * Replicas the private server gets (PANDA_BENCH_WAIT_REPLICAS), each a
 * `redis-server --replicaof` it, so that `--redis-wait-replicas` (WAIT after
 * every write) is measured against real replication.
 */
export function benchWaitReplicas(): number {
  const value = Number(process.env.PANDA_BENCH_WAIT_REPLICAS ?? 0);
  if (!Number.isInteger(value) || value < 0 || value > 4)
    throw new Error(`PANDA_BENCH_WAIT_REPLICAS must be 0 to 4, not ${process.env.PANDA_BENCH_WAIT_REPLICAS}`);
  return value;
}

function redisArgs(port: number, fsync: string, dir: string): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    fsync,
    "--dir",
    dir,
  ];
}

/** Resolves once `check` holds on the server at `url` (refused connections while it starts are expected). */
async function untilServer(url: string, check: (redis: Redis) => Promise<boolean>): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  probe.on("error", () => {});
  const deadline = Date.now() + 10_000;
  try {
    while (Date.now() < deadline) {
      try {
        if (await check(probe)) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server at ${url} not ready within 10 s`);
  } finally {
    probe.disconnect();
  }
}

/** A replica of the private server, in a directory of its own: resolves once it is in sync. */
async function startReplica(masterPort: number, fsync: string): Promise<{ stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "panda-bench-replica-"));
  const child = spawn(
    "redis-server",
    [...redisArgs(port, fsync, dir), "--replicaof", "127.0.0.1", String(masterPort)],
    {
      stdio: "ignore",
    },
  );
  await untilServer(`redis://127.0.0.1:${port}`, async (r) =>
    /master_link_status:up/.test(await r.info("replication")),
  );
  return {
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a private `redis-server` with AOF on (see `appendfsync`), so
 * benchmarks measure durable commits and nothing else shares the server.
 * Falls back to PANDA_BENCH_REDIS_URL or the local Redis.
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  const fsync = appendfsync();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "panda-bench-redis-"));
  const child = spawn("redis-server", redisArgs(port, fsync, dir), { stdio: "ignore" });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(false));
    child.once("spawn", () => resolve(true));
  });
  if (spawned) {
    const url = `redis://127.0.0.1:${port}`;
    await untilServer(url, async (r) => (await r.ping()) === "PONG");
    const replicas: { stop(): Promise<void> }[] = [];
    for (let i = 0; i < benchWaitReplicas(); i++) replicas.push(await startReplica(port, fsync));
    return {
      url,
      description:
        `private redis-server on port ${port}, appendonly yes, appendfsync ${fsync}` +
        (replicas.length > 0 ? `, ${replicas.length} replica(s), writes wait for them (WAIT)` : ""),
      async stop() {
        for (const replica of replicas) await replica.stop();
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  const url = process.env.PANDA_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
  return {
    url,
    description: `${url} (no redis-server binary; AOF setting is that server's)`,
    async stop() {},
  };
}
