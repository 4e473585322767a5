// The local batch system: pilot jobs as detached child processes on this machine, remembered in a state directory.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { ENV } from "../cli/config.js";
import { processAlive } from "../store/state-dir.js";
import type { BatchJobStatus, BatchSystem, PilotJobSpec } from "./batch-system.js";
import { copiesScript } from "./shell-words.js";

export interface LocalBatchOptions {
  /** One file per job (pid, exit) lives here: one directory per queue. */
  stateDir: string;
  /** Give each job an IPC channel whose closing tells it this process is gone (`panda up` uses it). */
  tieToParent?: boolean;
  /** After a cancel's SIGTERM, SIGKILL follows after this long (Slurm's KillWait). */
  killWaitMs?: number;
  /** Ended jobs stay in `status()` this long (Slurm's MinJobAge). */
  keepEndedMs?: number;
  /** Called when a job this process started ends. */
  onEnded?: (status: BatchJobStatus) => void;
}

const recordSchema = z.object({
  batchId: z.string(),
  pilotJobId: z.string(),
  pid: z.number().int().positive(),
  startedAtMs: z.number(),
  endedAtMs: z.number().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  cancelled: z.boolean(),
  /** Set when the job ended while no process of ours watched it: its exit code is unknown. */
  unobserved: z.boolean(),
});
type LocalRecord = z.infer<typeof recordSchema>;

/** This process's environment with the job's on top, without a user's credential: a pilot needs only its own. */
function jobEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env[ENV.token];
  return env;
}

function statusOf(record: LocalRecord): BatchJobStatus {
  const base = {
    batchId: record.batchId,
    pilotJobId: record.pilotJobId,
    exitCode: record.exitCode,
    startedAtMs: record.startedAtMs,
    endedAtMs: record.endedAtMs,
  };
  if (record.endedAtMs === null) return { ...base, state: "running", reason: null };
  if (record.cancelled) return { ...base, state: "cancelled", reason: "cancelled" };
  if (record.unobserved)
    return { ...base, state: "done", reason: "ended while nothing watched it; its exit code is unknown" };
  if (record.signal) return { ...base, state: "failed", reason: `killed by ${record.signal}` };
  return { ...base, state: record.exitCode === 0 ? "done" : "failed", reason: null };
}

/**
 * Runs each pilot job as a detached process group (a Ctrl-C in the terminal
 * reaches only the parent) and writes what it knows of it to the state
 * directory, so another process — a restarted factory — sees the same jobs.
 * Nothing queues here: a submitted job runs at once.
 */
export class LocalBatchSystem implements BatchSystem {
  readonly kind = "local";
  private readonly children = new Map<string, { child: ChildProcess; exited: Promise<void> }>();
  private readonly killTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: LocalBatchOptions) {
    mkdirSync(options.stateDir, { recursive: true });
  }

  async submit(spec: PilotJobSpec): Promise<string> {
    const batchId = `local-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
    mkdirSync(spec.workdir, { recursive: true });
    mkdirSync(dirname(spec.logPath), { recursive: true });
    const logFd = openSync(spec.logPath, "a");
    const [command, args] =
      spec.copies === 1
        ? [spec.argv[0]!, spec.argv.slice(1)]
        : ["/bin/sh", ["-c", copiesScript(spec.argv, spec.copies)]];
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: spec.workdir,
        env: jobEnv(spec.env),
        stdio: ["ignore", logFd, logFd, ...(this.options.tieToParent ? (["ipc"] as const) : [])],
        detached: true,
      });
    } finally {
      closeSync(logFd);
    }
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid!));
      child.once("error", reject);
    });
    const record: LocalRecord = {
      batchId,
      pilotJobId: spec.pilotJobId,
      pid,
      startedAtMs: Date.now(),
      endedAtMs: null,
      exitCode: null,
      signal: null,
      cancelled: false,
      unobserved: false,
    };
    this.write(record);
    const exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        const ended = { ...this.read(batchId)!, endedAtMs: Date.now(), exitCode: code, signal };
        if (this.options.keepEndedMs === 0) rmSync(this.pathOf(batchId), { force: true });
        else this.write(ended);
        this.children.delete(batchId);
        resolve();
        this.options.onEnded?.(statusOf(ended));
      });
    });
    this.children.set(batchId, { child, exited });
    return batchId;
  }

  async status(): Promise<BatchJobStatus[]> {
    const nowMs = Date.now();
    const keepMs = this.options.keepEndedMs ?? 10 * 60_000;
    const answer: BatchJobStatus[] = [];
    for (const name of readdirSync(this.options.stateDir)) {
      if (!name.endsWith(".json")) continue;
      let record = this.read(name.slice(0, -".json".length));
      if (!record) continue;
      if (record.endedAtMs === null && !this.children.has(record.batchId) && !processAlive(record.pid)) {
        record = { ...record, endedAtMs: nowMs, unobserved: true };
        this.write(record);
      }
      if (record.endedAtMs !== null && nowMs - record.endedAtMs > keepMs) {
        rmSync(this.pathOf(record.batchId), { force: true });
        continue;
      }
      answer.push(statusOf(record));
    }
    return answer;
  }

  /** SIGTERM (a pilot drains), SIGKILL after `killWaitMs` for one that lingers. */
  async cancel(batchIds: readonly string[]): Promise<void> {
    for (const batchId of batchIds) {
      const record = this.read(batchId);
      if (!record || record.endedAtMs !== null) continue;
      this.write({ ...record, cancelled: true });
      this.signal(batchId, "SIGTERM");
      const timer = setTimeout(() => {
        this.killTimers.delete(timer);
        this.signal(batchId, "SIGKILL");
      }, this.options.killWaitMs ?? 30_000);
      timer.unref();
      this.killTimers.add(timer);
    }
  }

  /** Signals a running job's whole process group; false when it is not running. */
  signal(batchId: string, signal: NodeJS.Signals): boolean {
    const record = this.read(batchId);
    if (!record || record.endedAtMs !== null) return false;
    try {
      process.kill(-record.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves when a job this process started has exited (at once for any other). */
  exited(batchId: string): Promise<void> {
    return this.children.get(batchId)?.exited ?? Promise.resolve();
  }

  /** Process ids of the jobs this process started that still run. */
  pids(): number[] {
    return [...this.children.values()].flatMap(({ child }) => (child.pid === undefined ? [] : [child.pid]));
  }

  close(): void {
    for (const timer of this.killTimers) clearTimeout(timer);
    this.killTimers.clear();
  }

  private pathOf(batchId: string): string {
    return join(this.options.stateDir, `${batchId}.json`);
  }

  private read(batchId: string): LocalRecord | null {
    try {
      const parsed = recordSchema.safeParse(JSON.parse(readFileSync(this.pathOf(batchId), "utf8")));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  /** Whole file or nothing: a crash mid-write never leaves a record half written. */
  private write(record: LocalRecord): void {
    const path = this.pathOf(record.batchId);
    writeFileSync(`${path}.tmp`, JSON.stringify(record));
    renameSync(`${path}.tmp`, path);
  }
}
