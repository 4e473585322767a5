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
 * Starts a private `redis-server` with AOF on (see `appendfsync`), so
 * benchmarks measure durable commits and nothing else shares the server.
 * Falls back to PANDA_BENCH_REDIS_URL or the local Redis.
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  const fsync = appendfsync();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "panda-bench-redis-"));
  const child = spawn(
    "redis-server",
    [
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
    ],
    { stdio: "ignore" },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(false));
    child.once("spawn", () => resolve(true));
  });
  if (spawned) {
    const url = `redis://127.0.0.1:${port}`;
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    // Refused connections are expected until the server listens; ping() below reports them.
    probe.on("error", () => {});
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        if ((await probe.ping()) === "PONG") break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    probe.disconnect();
    return {
      url,
      description: `private redis-server on port ${port}, appendonly yes, appendfsync ${fsync}`,
      async stop() {
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
