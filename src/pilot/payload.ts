/**
 * A job's payload: a child process leading its own process group, so that
 * killing the group takes whatever the payload started with it.
 */
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";

export interface PayloadExit {
  /** Null when a signal ended it. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface PayloadLaunch {
  command: readonly [string, ...string[]];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr both go here (appended). */
  logPath: string;
}

export class Payload {
  readonly exited: Promise<PayloadExit>;
  private exit: PayloadExit | undefined;

  private constructor(
    readonly pid: number,
    exited: Promise<PayloadExit>,
  ) {
    this.exited = exited.then((exit) => {
      this.exit = exit;
      // Children the payload left behind (background jobs) must not outlive their job.
      this.signalGroup("SIGKILL");
      return exit;
    });
  }

  /** Resolves once the process runs; rejects when it cannot start (no such command, not executable). */
  static async start(launch: PayloadLaunch): Promise<Payload> {
    const logFile = await open(launch.logPath, "a");
    try {
      const [file, ...args] = launch.command;
      const child = spawn(file, args, {
        cwd: launch.cwd,
        env: launch.env,
        detached: true,
        stdio: ["ignore", logFile.fd, logFile.fd],
      });
      const exited = new Promise<PayloadExit>((resolve) =>
        child.once("exit", (exitCode, signal) => resolve({ exitCode, signal })),
      );
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      if (child.pid === undefined) throw new Error(`${file} started without a pid`);
      return new Payload(child.pid, exited);
    } finally {
      // The child holds its own copy of the descriptor.
      await logFile.close();
    }
  }

  /** SIGTERM to the whole group, SIGKILL after `graceMs` if it is still there; resolves on exit. */
  async kill(graceMs: number): Promise<PayloadExit> {
    if (this.exit !== undefined) return this.exit;
    this.signalGroup("SIGTERM");
    const hardKill = setTimeout(() => this.signalGroup("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(hardKill);
    }
  }

  /** SIGKILL to the group at once, synchronously: for a pilot that is about to die itself. */
  killNow(): void {
    this.signalGroup("SIGKILL");
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      // A negative pid addresses the process group the payload leads (detached: true made it one).
      process.kill(-this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/** How a payload's end reads in a report. */
export function describeExit(exit: PayloadExit): string {
  return exit.signal !== null
    ? `payload killed by ${exit.signal}`
    : `payload exited with code ${exit.exitCode}`;
}
