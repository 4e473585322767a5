import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
/** Absolute, so `panda` (and the pilots `up` starts the same way) load TypeScript from any working directory. */
const TSX_LOADER = import.meta.resolve("tsx");

/** `panda` as the tests run it, from source: for code that starts `panda` children itself (`ServerChild`). */
export function pandaCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: ["--import", TSX_LOADER, CLI_MAIN] };
}

/** The test runner's environment without any panda configuration that could leak in. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("PANDA_")) delete env[key];
  return { ...env, ...extra };
}

export interface PandaRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnPanda(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ["--import", TSX_LOADER, CLI_MAIN, ...args], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs one `panda` command to its end. */
export function runPanda(args: readonly string[], cwd: string, env = cleanEnv()): Promise<PandaRun> {
  const child = spawnPanda(args, cwd, env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/** A long-running `panda` command as a child process, with its output kept for assertions and for failing tests' logs. */
export class PandaDaemon {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout = "";
  stderr = "";

  constructor(args: readonly string[], cwd: string, env = cleanEnv()) {
    this.child = spawnPanda(args, cwd, env);
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.stdout += chunk.toString("utf8");
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  /** Stops it whatever state it is in (SIGKILL after a grace), for cleanup. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** `panda up` as a child process. */
export class PandaUp extends PandaDaemon {
  constructor(args: readonly string[], cwd: string) {
    super(["up", ...args], cwd);
  }
}

/** Polls `probe` until it answers a value, or throws after `timeoutMs`. */
export async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Live (not zombie) processes whose command line contains every one of `parts`. */
export function processesWith(...parts: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(join("/proc", entry, "cmdline"), "utf8")
        .split("\0")
        .join(" ");
      if (!parts.every((part) => cmdline.includes(part))) continue;
      const stat = readFileSync(join("/proc", entry, "stat"), "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** A JSON file's content once it is there and whole; undefined before. */
export function readJsonIfComplete(path: string): unknown {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}
