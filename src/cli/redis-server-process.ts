/**
 * `redis-server` as a child process on a local port, and the small probes that
 * go with it: what `panda up --redis-cluster` and the tests start Redis with.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { Redis } from "../store/ioredis.js";

const STARTUP_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 50;

/** Servers this process started; killed when it exits, however the tests ended. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function redisBinariesAvailable(): boolean {
  return ["redis-server", "redis-cli"].every((binary) => !spawnSync(binary, ["--version"]).error);
}

/** Polls with a bound: for waiting on another process, where there is no event to await. */
export async function pollUntil(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** One short-lived connection that gives up at once instead of reconnecting. */
export async function withProbe<T>(url: string, probe: (redis: Redis) => Promise<T>): Promise<T | null> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await probe(redis);
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}

export async function answersPing(url: string): Promise<boolean> {
  return (await withProbe(url, (redis) => redis.ping())) === "PONG";
}

export interface RedisServerProcess {
  port: number;
  /** SIGTERM, resolved once it exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a machine's death would: resolved once it exited. */
  kill(): Promise<void>;
}

/** What redis-server logs once it listens; every version since 2.x says it this way. */
const READY_LINE = /Ready to accept connections/;

/**
 * Starts `redis-server` on `port` without persistence and resolves once it
 * says it is ready; null if it exits first (typically: the port was taken
 * meanwhile). Its own log is the signal, not a PING, which another server
 * on the same port would answer too.
 */
export async function startRedisServer(
  port: number,
  extraArgs: string[] = [],
): Promise<RedisServerProcess | null> {
  const args = ["--port", String(port), "--save", "", "--appendonly", "no", ...extraArgs];
  // Its own process group: a Ctrl-C in a terminal reaches `panda up` alone, which stops Redis last.
  const child = spawn("redis-server", args, {
    cwd: tmpdir(),
    stdio: ["ignore", "pipe", "ignore"],
    detached: true,
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  void exited.then(() => running.delete(child));

  let startupLog: string | null = "";
  const ready = new Promise<boolean>((resolve) => {
    // Keep reading after ready (a full pipe would block the server's logging), just stop keeping it.
    child.stdout.on("data", (chunk: Buffer) => {
      if (startupLog === null) return;
      startupLog += chunk.toString();
      if (READY_LINE.test(startupLog)) {
        startupLog = null;
        resolve(true);
      }
    });
    void exited.then(() => resolve(false));
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), STARTUP_TIMEOUT_MS);
  });
  const started = await Promise.race([ready, timedOut]);
  clearTimeout(timer);
  if (started === "timeout") {
    child.kill("SIGKILL");
    throw new Error(
      `redis-server on port ${port} was not ready after ${STARTUP_TIMEOUT_MS} ms:\n${startupLog}`,
    );
  }
  if (!started) return null;
  const ended = async (signal: NodeJS.Signals) => {
    if (!running.has(child)) return;
    child.kill(signal);
    await exited;
  };
  return { port, stop: () => ended("SIGTERM"), kill: () => ended("SIGKILL") };
}
