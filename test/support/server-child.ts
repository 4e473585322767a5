import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ServerNodeOptions } from "../../src/server/server.js";

const SCRIPT = fileURLToPath(new URL("./server-process.ts", import.meta.url));

/** A server node (server-process.ts) as a child process: started, killed, started again on the same data. */
export class ServerChild {
  readonly process: ChildProcess;
  readonly url: Promise<string>;
  readonly exited: Promise<void>;

  constructor(options: ServerNodeOptions) {
    this.process = fork(SCRIPT, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, PANDA_TEST_SERVER_OPTIONS: JSON.stringify(options) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.exited = new Promise((resolve) => this.process.once("exit", () => resolve()));
    this.url = new Promise((resolve, reject) => {
      this.process.once("message", (m) => resolve((m as { url: string }).url));
      this.process.once("exit", (code) => reject(new Error(`server exited with ${code} before listening`)));
    });
    this.url.catch(() => {});
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill("SIGKILL");
    await this.exited;
  }
}
