/**
 * `panda server` nodes as child processes of `panda up --nodes N`: each on
 * its own port, its JSON log in a file, answered once its `/healthz` does,
 * and stopped by SIGTERM (a node's drain) with SIGKILL after a grace.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { SelfCommand } from "./local-pilots.js";

/** How long a node may take from its start to a healthy `/healthz`. */
const HEALTHY_TIMEOUT_MS = 30_000;
const HEALTH_POLL_MS = 200;
/** A node drains on SIGTERM: it hands its shards over and closes its sockets. More than that is a hang. */
const STOP_GRACE_MS = 15_000;

export interface ServerChildSpec {
  /** `node-1`: names it in what `up` prints. */
  name: string;
  port: number;
  /** `panda server`'s flags after `--port`. */
  args: string[];
  logPath: string;
}

/** What `/healthz` answers: the node's id in the runtime and how many shards it holds now. */
export interface NodeHealth {
  ok: boolean;
  node: string;
  shards: number;
}

export class ServerChild {
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(
    readonly spec: ServerChildSpec,
    self: SelfCommand,
    host: string,
  ) {
    this.url = `http://${host}:${spec.port}`;
    mkdirSync(dirname(spec.logPath), { recursive: true });
    const log = createWriteStream(spec.logPath, { flags: "a" });
    this.child = spawn(
      self.command,
      [...self.args, "server", "--host", host, "--port", String(spec.port), ...spec.args],
      // Its own process group: a Ctrl-C in the terminal reaches `up`, which stops the nodes in order.
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        log.end();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** `/healthz` once it answers; throws if the node exits first or takes too long. */
  async healthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<NodeHealth> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running)
        throw new Error(`${this.spec.name} exited before it served (log: ${this.spec.logPath})`);
      const health = await this.health();
      if (health) return health;
      if (Date.now() > deadline)
        throw new Error(
          `${this.spec.name} did not answer within ${timeoutMs} ms (log: ${this.spec.logPath})`,
        );
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
    }
  }

  /** `/healthz` now, or null when the node does not answer. */
  async health(): Promise<NodeHealth | null> {
    try {
      const response = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
      return response.ok ? ((await response.json()) as NodeHealth) : null;
    } catch {
      return null;
    }
  }

  /** SIGTERM: the node drains; SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, as a machine's death would. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}
