import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, onTestFailed } from "vitest";
import { jobDirName } from "../../src/pilot/job-run.js";
import { FakeServer, type FakeServerOptions, SITE, TOKEN } from "./fake-server.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PILOT_MAIN = join(REPO_ROOT, "src/pilot/main.ts");

export interface PilotExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The real pilot (`src/pilot/main.ts`) as a child process, its stderr log kept. */
export class PilotProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<PilotExit>;
  private stderr = "";

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, ["--import", "tsx", PILOT_MAIN, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  get log(): string {
    return this.stderr;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGINT first, so that the pilot takes its payloads with it; SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGINT");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Whether a process is there and not a zombie (a dead child nobody reaped yet is as good as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Polls a condition every 10 ms (for state outside the protocol, such as files a payload writes). */
export async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A pid a payload wrote into its job directory (`echo $$ > name`), once the line is complete. */
export function payloadPid(workdir: string, jobId: string, name = "pid"): Promise<number> {
  return until(async () => {
    const text = await readFile(join(workdir, jobDirName(jobId, 1), name), "utf8").catch(() => "");
    return text.endsWith("\n") ? Number(text.trim()) : undefined;
  });
}

export interface PilotFixture {
  server: FakeServer;
  pilot: PilotProcess;
  workdir: string;
}

/**
 * Starts a fake server and a pilot against it for each test, and takes both
 * down afterwards; a failing test prints the pilot's log.
 */
export function usePilotFixture(): (options?: {
  server?: FakeServerOptions;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
  token?: string;
}) => Promise<PilotFixture> {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return async (options = {}) => {
    const server = await FakeServer.start(options.server);
    cleanups.push(() => server.close());
    const workdir = await mkdtemp(join(tmpdir(), "panda-pilot-work-"));
    cleanups.push(() => rm(workdir, { recursive: true, force: true }));
    const token = options.token ?? TOKEN;
    const args = ["--server", server.url, "--site", SITE, "--workdir", workdir, ...(options.flags ?? [])];
    const pilot = new PilotProcess(options.env ? args : [...args, "--token", token], {
      ...process.env,
      ...options.env,
    });
    cleanups.push(() => pilot.stop());
    onTestFailed(() => {
      process.stderr.write(`--- pilot log ---\n${pilot.log}`);
    });
    return { server, pilot, workdir };
  };
}
