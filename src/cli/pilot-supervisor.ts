import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { TOKEN_ENV } from "../pilot/pilot.js";
import { ENV } from "./config.js";

/** One local pilot `panda up` keeps running. */
export interface PilotSpec {
  /** `SITE-A-1`: names its work directory and log file. */
  name: string;
  site: string;
  token: string;
  workdir: string;
  logPath: string;
}

/** How to start `panda` again as a child: this node binary, its flags (e.g. a TypeScript loader) and entry script. */
export interface SelfCommand {
  command: string;
  args: string[];
}

export function selfCommand(): SelfCommand {
  return { command: process.execPath, args: [...process.execArgv, process.argv[1]!] };
}

export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
  /** A pilot that ran this long before exiting counts as healthy: its next restart waits `initialMs` again. */
  healthyAfterMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoff = {
  initialMs: 1_000,
  maxMs: 30_000,
  healthyAfterMs: 60_000,
};

/** How long a pilot that was told to stop now (SIGINT) gets before SIGKILL: above the pilot's own 3 s hard stop. */
const STOP_NOW_GRACE_MS = 5_000;

/** Exit codes that another start would only repeat: bad arguments and a refused credential. */
const EXIT_CODES_NOT_RETRIED: Record<number, string> = {
  2: "its arguments were refused",
  3: "the server refused its token",
};

interface Supervised {
  spec: PilotSpec;
  child: ChildProcess | null;
  exited: Promise<void>;
  startedAtMs: number;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

function isRunning(child: ChildProcess | null): child is ChildProcess {
  return child !== null && child.exitCode === null && child.signalCode === null;
}

function waitOrTimeout(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    void promise.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Runs `panda pilot` child processes and restarts them with backoff when they
 * exit on their own. Each pilot gets its own process group, so a Ctrl-C in the
 * terminal reaches only `panda up`, which then drains the pilots in order, and
 * an IPC channel whose closing tells an orphaned pilot that `up` is gone.
 */
export class PilotSupervisor {
  private readonly pilots: Supervised[];
  private stopping = false;

  constructor(
    private readonly serverUrl: string,
    specs: PilotSpec[],
    private readonly say: (line: string) => void,
    private readonly self: SelfCommand = selfCommand(),
    private readonly backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF,
  ) {
    this.pilots = specs.map((spec) => ({
      spec,
      child: null,
      exited: Promise.resolve(),
      startedAtMs: 0,
      failures: 0,
      restartTimer: undefined,
    }));
  }

  start(): void {
    for (const pilot of this.pilots) this.launch(pilot);
  }

  /** Process ids of the pilots running now. */
  pids(): number[] {
    return this.pilots.flatMap((p) => (isRunning(p.child) && p.child.pid !== undefined ? [p.child.pid] : []));
  }

  /**
   * SIGTERM (drain: finish the running jobs, report, exit); after `drainGraceMs`
   * SIGINT (kill the payloads, exit); SIGKILL for a pilot that still lingers.
   */
  async stop(drainGraceMs: number): Promise<void> {
    this.stopping = true;
    for (const pilot of this.pilots) clearTimeout(pilot.restartTimer);
    const all = () => Promise.all(this.pilots.map((p) => p.exited));
    this.signalRunning("SIGTERM");
    await waitOrTimeout(all(), drainGraceMs);
    if (this.pids().length === 0) return;
    this.say(`pilots still draining after ${drainGraceMs / 1000} s: stopping their payloads`);
    this.signalRunning("SIGINT");
    await waitOrTimeout(all(), STOP_NOW_GRACE_MS);
    this.signalRunning("SIGKILL");
    await all();
  }

  /** A second Ctrl-C: skip the drain, stop the payloads now. */
  stopNow(): void {
    this.stopping = true;
    this.signalRunning("SIGINT");
  }

  private signalRunning(signal: NodeJS.Signals): void {
    for (const pilot of this.pilots) if (isRunning(pilot.child)) pilot.child.kill(signal);
  }

  private launch(pilot: Supervised): void {
    const { spec } = pilot;
    mkdirSync(spec.workdir, { recursive: true });
    mkdirSync(dirname(spec.logPath), { recursive: true });
    const logFd = openSync(spec.logPath, "a");
    const env: NodeJS.ProcessEnv = { ...process.env, [TOKEN_ENV]: spec.token };
    // A pilot needs only its own credential, never the user's.
    delete env[ENV.token];
    const args = [
      ...this.self.args,
      "pilot",
      "--server",
      this.serverUrl,
      "--site",
      spec.site,
      "--multitask",
      "--stay",
      "--workdir",
      spec.workdir,
    ];
    const child = spawn(this.self.command, args, {
      env,
      stdio: ["ignore", logFd, logFd, "ipc"],
      detached: true,
    });
    closeSync(logFd);
    pilot.child = child;
    pilot.startedAtMs = Date.now();
    pilot.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        resolve();
        this.onExit(pilot, code, signal);
      });
    });
    child.once("error", (err) => this.say(`pilot ${spec.name} could not start: ${err.message}`));
  }

  private onExit(pilot: Supervised, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    const { spec } = pilot;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const notRetried = code === null ? undefined : EXIT_CODES_NOT_RETRIED[code];
    if (notRetried) {
      this.say(`pilot ${spec.name} ${how}: ${notRetried}; not restarting it (log: ${spec.logPath})`);
      return;
    }
    const ranMs = Date.now() - pilot.startedAtMs;
    pilot.failures = ranMs >= this.backoff.healthyAfterMs ? 0 : pilot.failures + 1;
    const delayMs = Math.min(
      this.backoff.maxMs,
      this.backoff.initialMs * 2 ** Math.max(0, pilot.failures - 1),
    );
    this.say(`pilot ${spec.name} ${how}; restarting it in ${delayMs / 1000} s (log: ${spec.logPath})`);
    pilot.restartTimer = setTimeout(() => {
      if (!this.stopping) this.launch(pilot);
    }, delayMs);
  }
}
