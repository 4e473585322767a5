// The Slurm batch system: sbatch (the job script on stdin), squeue --json, scancel.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname } from "node:path";
import { z } from "zod";
import { ENV } from "../cli/config.js";
import { TOKEN_ENV } from "../pilot/pilot.js";
import {
  type BatchJobState,
  type BatchJobStatus,
  type BatchSystem,
  BatchSystemError,
  type PilotJobSpec,
} from "./batch-system.js";
import { copiesScript, shellQuote } from "./shell-words.js";

export interface SlurmOptions {
  /** Job names of this queue start with it (`factory.queue.`): `status` answers only those. */
  namePrefix: string;
  /** Further sbatch arguments (`--account=X`). */
  extraArgs?: readonly string[];
  /** The Slurm client commands, when they are not on PATH. */
  binDir?: string;
  /** Whose jobs `squeue` lists: this process's user by default. */
  user?: string;
}

const COMMAND_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Slurm's job states (squeue's long names) as the factory counts them. */
const STATE_OF: Record<string, BatchJobState> = {
  PENDING: "queued",
  CONFIGURING: "queued",
  REQUEUED: "queued",
  REQUEUE_FED: "queued",
  REQUEUE_HOLD: "queued",
  RESV_DEL_HOLD: "queued",
  SUSPENDED: "queued",
  RUNNING: "running",
  COMPLETING: "running",
  STAGE_OUT: "running",
  SIGNALING: "running",
  RESIZING: "running",
  COMPLETED: "done",
  CANCELLED: "cancelled",
  FAILED: "failed",
  TIMEOUT: "failed",
  NODE_FAIL: "failed",
  PREEMPTED: "failed",
  BOOT_FAIL: "failed",
  DEADLINE: "failed",
  OUT_OF_MEMORY: "failed",
  REVOKED: "failed",
  SPECIAL_EXIT: "failed",
};

/** `squeue --json` as far as the factory reads it; 22.05 gives numbers, later releases objects. */
const squeueSchema = z.looseObject({
  jobs: z.array(
    z.looseObject({
      job_id: z.number(),
      name: z.string(),
      job_state: z.union([z.string(), z.array(z.string())]),
      exit_code: z.union([z.number(), z.looseObject({}), z.null()]).optional(),
      start_time: z.union([z.number(), z.looseObject({ number: z.number().optional() })]).optional(),
      end_time: z.union([z.number(), z.looseObject({ number: z.number().optional() })]).optional(),
      state_reason: z.string().optional(),
    }),
  ),
});

function epochMs(value: unknown): number | null {
  const seconds = typeof value === "number" ? value : (value as { number?: number } | undefined)?.number;
  return seconds ? seconds * 1000 : null;
}

/** A wait status (22.05: `code << 8 | signal`) or `{ return_code: { number } }` (23.02+). */
function exitCodeOf(value: unknown): number | null {
  if (typeof value === "number") return value & 0x7f ? 128 + (value & 0x7f) : (value >> 8) & 0xff;
  const returned = (value as { return_code?: unknown } | null | undefined)?.return_code;
  if (typeof returned === "number") return returned;
  const number = (returned as { number?: unknown } | undefined)?.number;
  return typeof number === "number" ? number : null;
}

/** `--time` in minutes, rounded up: Slurm's coarsest unit that every release parses. */
function minutesOf(seconds: number): number {
  return Math.max(1, Math.ceil(seconds / 60));
}

/** The job script: `#SBATCH` lines, then into the work directory and run the copies. */
export function slurmScript(spec: PilotJobSpec, extraArgs: readonly string[]): string {
  const directives = [
    `--job-name=${spec.pilotJobId}`,
    ...(spec.partition ? [`--partition=${spec.partition}`] : []),
    `--time=${minutesOf(spec.walltimeSec)}`,
    "--nodes=1",
    "--ntasks=1",
    `--cpus-per-task=${spec.cores}`,
    `--mem=${spec.memoryMb}M`,
    `--output=${spec.logPath}`,
    "--open-mode=append",
    ...extraArgs,
  ];
  return [
    "#!/bin/sh",
    ...directives.map((d) => `#SBATCH ${d}`),
    `mkdir -p ${shellQuote(spec.workdir)} && cd ${shellQuote(spec.workdir)} || exit 12`,
    copiesScript(spec.argv, spec.copies),
    "",
  ].join("\n");
}

export class SlurmBatchSystem implements BatchSystem {
  readonly kind = "slurm";

  constructor(private readonly options: SlurmOptions) {}

  /**
   * The script goes on stdin (no file on the factory's disk); the token goes
   * in the job's environment, not the script, so `scontrol write batch_script`
   * does not show it.
   */
  async submit(spec: PilotJobSpec): Promise<string> {
    // Slurm opens --output on the node but makes no directory for it (a shared file system is assumed).
    mkdirSync(dirname(spec.logPath), { recursive: true });
    const { stdout } = await this.run(
      "sbatch",
      ["--parsable"],
      slurmScript(spec, this.options.extraArgs ?? []),
      {
        ...spec.env,
      },
    );
    const batchId = stdout.trim().split(";")[0]!;
    if (!/^\d+(_\d+)?$/.test(batchId))
      throw new BatchSystemError(`sbatch answered ${JSON.stringify(stdout)}`);
    return batchId;
  }

  async status(): Promise<BatchJobStatus[]> {
    const user = this.options.user ?? userInfo().username;
    const { stdout } = await this.run("squeue", ["--json", "--states=all", `--user=${user}`]);
    let parsed: z.infer<typeof squeueSchema>;
    try {
      parsed = squeueSchema.parse(JSON.parse(stdout));
    } catch (err) {
      throw new BatchSystemError(
        `squeue --json answered what the factory cannot read: ${(err as Error).message}`,
      );
    }
    return parsed.jobs
      .filter((job) => job.name.startsWith(this.options.namePrefix))
      .map((job) => {
        const slurmState = Array.isArray(job.job_state) ? (job.job_state[0] ?? "") : job.job_state;
        const state = STATE_OF[slurmState] ?? "queued";
        const ended = state === "done" || state === "failed" || state === "cancelled";
        const reason = job.state_reason && job.state_reason !== "None" ? job.state_reason : null;
        return {
          batchId: String(job.job_id),
          pilotJobId: job.name,
          state,
          exitCode: ended ? exitCodeOf(job.exit_code) : null,
          startedAtMs: state === "queued" ? null : epochMs(job.start_time),
          endedAtMs: ended ? epochMs(job.end_time) : null,
          reason:
            slurmState === "PENDING" || ended ? (reason ?? (state === "failed" ? slurmState : null)) : null,
        };
      });
  }

  async cancel(batchIds: readonly string[]): Promise<void> {
    if (batchIds.length === 0) return;
    await this.run("scancel", [...batchIds]);
  }

  private run(
    command: string,
    args: string[],
    stdin?: string,
    extraEnv: Record<string, string> = {},
  ): Promise<{ stdout: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // sbatch exports this environment to the job: only the job's own pilot token goes along.
    delete env[ENV.token];
    delete env[TOKEN_ENV];
    const path = this.options.binDir ? `${this.options.binDir}/${command}` : command;
    return new Promise((resolve, reject) => {
      const child = execFile(
        path,
        args,
        { env: { ...env, ...extraEnv }, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES },
        (err, stdout, stderr) => {
          if (err) {
            const said = stderr.trim() || (err as Error).message;
            reject(new BatchSystemError(`${command} ${args.join(" ")} failed: ${said}`));
          } else resolve({ stdout });
        },
      );
      if (stdin !== undefined) child.stdin?.end(stdin);
    });
  }
}
