// `panda up`'s pilots: a fixed number per site, submitted to the local batch system and resubmitted when they die.
import type { BatchJobStatus } from "../factory/batch-system.js";
import { LocalBatchSystem } from "../factory/local-batch.js";
import { TOKEN_ENV } from "../pilot/pilot.js";

/** One local pilot `panda up` keeps running. */
export interface PilotSpec {
  /** `SITE-A-1`: names its work directory and log file. */
  name: string;
  site: string;
  token: string;
  workdir: string;
  logPath: string;
  /** The pilot's `--server` list (`URL1,URL2`: the first, then the next after a dropped socket); the one server otherwise. */
  servers?: string;
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

interface Kept {
  spec: PilotSpec;
  batchId: string | null;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
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
 * Keeps `panda pilot` jobs running on the local batch system and resubmits
 * them with backoff when they exit on their own. Each job is its own process
 * group, so a Ctrl-C in the terminal reaches only `panda up`, which then
 * drains the pilots in order; each has an IPC channel whose closing tells an
 * orphaned pilot that `up` is gone.
 */
export class LocalPilots {
  private readonly kept: Kept[];
  private readonly batch: LocalBatchSystem;
  private stopping = false;

  constructor(
    private readonly serverUrl: string,
    specs: PilotSpec[],
    stateDir: string,
    private readonly say: (line: string) => void,
    private readonly self: SelfCommand = selfCommand(),
    private readonly backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF,
  ) {
    this.kept = specs.map((spec) => ({ spec, batchId: null, failures: 0, restartTimer: undefined }));
    this.batch = new LocalBatchSystem({
      stateDir,
      tieToParent: true,
      // `up` remembers nothing across runs, so ended jobs need not linger.
      keepEndedMs: 0,
      onEnded: (status) => this.onEnded(status),
    });
  }

  start(): void {
    for (const pilot of this.kept) this.launch(pilot);
  }

  /** Process ids of the pilots running now. */
  pids(): number[] {
    return this.batch.pids();
  }

  /**
   * SIGTERM (drain: finish the running jobs, report, exit); after `drainGraceMs`
   * SIGINT (kill the payloads, exit); SIGKILL for a pilot that still lingers.
   */
  async stop(drainGraceMs: number): Promise<void> {
    this.stopping = true;
    for (const pilot of this.kept) clearTimeout(pilot.restartTimer);
    const all = () => Promise.all(this.kept.map((p) => (p.batchId ? this.batch.exited(p.batchId) : null)));
    this.signalRunning("SIGTERM");
    await waitOrTimeout(all(), drainGraceMs);
    if (this.pids().length > 0) {
      this.say(`pilots still draining after ${drainGraceMs / 1000} s: stopping their payloads`);
      this.signalRunning("SIGINT");
      await waitOrTimeout(all(), STOP_NOW_GRACE_MS);
      this.signalRunning("SIGKILL");
      await all();
    }
    this.batch.close();
  }

  /** A second Ctrl-C: skip the drain, stop the payloads now. */
  stopNow(): void {
    this.stopping = true;
    this.signalRunning("SIGINT");
  }

  private signalRunning(signal: NodeJS.Signals): void {
    for (const pilot of this.kept) if (pilot.batchId) this.batch.signal(pilot.batchId, signal);
  }

  private launch(pilot: Kept): void {
    const { spec } = pilot;
    const argv = [
      this.self.command,
      ...this.self.args,
      "pilot",
      "--server",
      spec.servers ?? this.serverUrl,
      "--site",
      spec.site,
      "--multitask",
      "--stay",
      "--workdir",
      spec.workdir,
    ];
    this.batch
      .submit({
        pilotJobId: spec.name,
        argv,
        env: { [TOKEN_ENV]: spec.token },
        copies: 1,
        partition: null,
        walltimeSec: 0,
        cores: 1,
        memoryMb: 0,
        workdir: spec.workdir,
        logPath: spec.logPath,
      })
      .then(
        (batchId) => {
          pilot.batchId = batchId;
          if (this.stopping) this.batch.signal(batchId, "SIGTERM");
        },
        (err: unknown) => this.say(`pilot ${spec.name} could not start: ${(err as Error).message}`),
      );
  }

  private onEnded(status: BatchJobStatus): void {
    const pilot = this.kept.find((p) => p.batchId === status.batchId);
    if (!pilot || this.stopping) return;
    const { spec } = pilot;
    const how = status.reason?.startsWith("killed by")
      ? `was ${status.reason}`
      : `exited with code ${status.exitCode}`;
    const notRetried = status.exitCode === null ? undefined : EXIT_CODES_NOT_RETRIED[status.exitCode];
    if (notRetried) {
      this.say(`pilot ${spec.name} ${how}: ${notRetried}; not restarting it (log: ${spec.logPath})`);
      return;
    }
    const ranMs = (status.endedAtMs ?? Date.now()) - (status.startedAtMs ?? 0);
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
