/**
 * Starts `pilot-swarm.ts` as a child process and talks to it: the parent
 * side of the benchmark's out-of-process pilots.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import type { SwarmCommand, SwarmMode, SwarmReport } from "./pilot-swarm.js";

export interface SwarmProgress {
  /** [jobId, performance.now() of this process at which the push was decoded]. */
  pushes: [string, number][];
  ended: string[];
  /** Server frames the pilots decoded. */
  frames: number;
  errors: number;
  lastError: string;
}

export class PilotSwarm {
  /** Requests waiting for their answer, by the answer's type, oldest first. */
  private readonly waiting = new Map<
    string,
    { resolve(report: SwarmReport): void; reject(err: Error): void }[]
  >();

  private constructor(
    private readonly child: ChildProcess,
    onProgress: (progress: SwarmProgress) => void,
  ) {
    child.on("message", (report: SwarmReport) => {
      if (report.type === "progress") {
        // Epoch milliseconds from the child, on this process's performance.now() timeline.
        const shift = performance.timeOrigin;
        onProgress({
          ...report,
          pushes: report.pushes.map(([jobId, atMs]) => [jobId, atMs - shift] as [string, number]),
        });
        return;
      }
      if (report.type === "error") {
        // The swarm failed a command: everything waiting on it fails with the reason.
        for (const queue of this.waiting.values())
          for (const w of queue.splice(0)) w.reject(new Error(report.message));
        return;
      }
      this.waiting.get(report.type)?.shift()?.resolve(report);
    });
  }

  /** Forks the swarm and connects `pilots` pilots to the server's pilot endpoint. */
  static async start(
    options: { url: string; token: string; pilots: number; site: string; version?: number },
    onProgress: (progress: SwarmProgress) => void,
  ): Promise<PilotSwarm> {
    const child = fork(fileURLToPath(new URL("./pilot-swarm.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const swarm = new PilotSwarm(child, onProgress);
    await swarm.request(
      { cmd: "start", ...options, version: options.version ?? PROTOCOL_VERSION },
      "started",
    );
    return swarm;
  }

  setMode(mode: SwarmMode): Promise<unknown> {
    return this.request({ cmd: "mode", mode }, "moded");
  }

  /** Resolves once every push and report the swarm saw before this call has reached `onProgress`. */
  drain(): Promise<unknown> {
    return this.request({ cmd: "drain" }, "drained");
  }

  /** CPU milliseconds the swarm process has used so far. */
  async cpuMs(): Promise<number> {
    const report = await this.request({ cmd: "cpu" }, "cpu");
    return (report as Extract<SwarmReport, { type: "cpu" }>).ms;
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.send({ cmd: "stop" } satisfies SwarmCommand);
    await exited;
  }

  private request(command: SwarmCommand, answer: SwarmReport["type"]): Promise<SwarmReport> {
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(answer) ?? [];
      queue.push({ resolve, reject });
      this.waiting.set(answer, queue);
      this.child.send(command);
    });
  }
}
