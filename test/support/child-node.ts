import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

const NODE_SCRIPT = fileURLToPath(new URL("./runtime-node.ts", import.meta.url));

export interface ChildNodeOptions {
  redisUrl: string;
  prefix: string;
  shards?: number;
  leaseMs?: number;
  renewEveryMs?: number;
  sweepEveryMs?: number;
}

/** A runtime node running in a child process (see runtime-node.ts), driven over IPC. */
export class ChildNode {
  readonly process: ChildProcess;
  readonly ready: Promise<{ nodeId: string; shards: number[] }>;
  readonly exited: Promise<number | null>;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Record<string, unknown>) => void>();

  constructor(options: ChildNodeOptions) {
    this.process = fork(NODE_SCRIPT, [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        PANDA_NODE_REDIS_URL: options.redisUrl,
        PANDA_NODE_PREFIX: options.prefix,
        PANDA_NODE_SHARDS: String(options.shards ?? 8),
        PANDA_NODE_LEASE_MS: String(options.leaseMs ?? 1000),
        ...(options.renewEveryMs ? { PANDA_NODE_RENEW_MS: String(options.renewEveryMs) } : {}),
        PANDA_NODE_SWEEP_MS: String(options.sweepEveryMs ?? 500),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.exited = new Promise((resolve) => this.process.once("exit", (code) => resolve(code)));
    this.ready = new Promise((resolve, reject) => {
      this.process.once("exit", (code) => reject(new Error(`node exited with ${code} before it was ready`)));
      this.process.on("message", (raw) => {
        const message = raw as Record<string, unknown>;
        if (message.ready) resolve(message as unknown as { nodeId: string; shards: number[] });
        const waiter = typeof message.id === "number" ? this.pending.get(message.id) : undefined;
        if (waiter) {
          this.pending.delete(message.id as number);
          waiter(message);
        }
      });
    });
    this.ready.catch(() => {});
  }

  request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, resolve);
      this.process.send({ id, ...body }, (err) => {
        if (err) {
          this.pending.delete(id);
          reject(err);
        }
      });
    });
  }

  send(ref: { kind: string; id: string }, event: unknown, eventId?: string) {
    return this.request({ cmd: "send", ref, event, ...(eventId ? { eventId } : {}) });
  }

  async shards(): Promise<number[]> {
    return (await this.request({ cmd: "shards" })).shards as number[];
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.process.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill("SIGKILL");
    await this.exited;
  }
}
