/**
 * `bench:dispatch`'s pilots, in a process of their own so that the server
 * node's CPU is measured alone: N protocol-level pilots over real
 * WebSockets whose payloads take no time. Each records when it decoded a
 * push (epoch milliseconds with sub-millisecond precision, comparable
 * across processes on one machine), reports at once and asks for the next
 * job. A pilot's frames of one turn go out in one write (its socket corked),
 * as a real pilot's reports do. Pilots speak the newest protocol version
 * unless `start` names another; they read no acks, so either kind will do.
 *
 * Driven over IPC by `pilot-swarm-client.ts`: `start`, `mode`, `drain`,
 * `cpu`, `stop`. Started with `fork()`.
 */
import WebSocket from "ws";
import { decode, encode } from "../../src/protocol/codec.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";

export type SwarmMode = "ended-only" | "lifecycle";

export type SwarmCommand =
  | {
      cmd: "start";
      url: string;
      token: string;
      pilots: number;
      site: string;
      /** The protocol version the pilots speak (its subprotocol offered, its `v` on every frame). */
      version: number;
    }
  | { cmd: "mode"; mode: SwarmMode }
  | { cmd: "drain" }
  | { cmd: "cpu" }
  | { cmd: "stop" };

export type SwarmReport =
  | { type: "started" }
  | { type: "moded" }
  | { type: "cpu"; ms: number }
  | {
      type: "progress";
      /** [jobId, epoch ms at which the push was decoded] since the last report. */
      pushes: [string, number][];
      /** Job ids a job.ended was sent for since the last report. */
      ended: string[];
      /** Server frames decoded since the last report. */
      frames: number;
      errors: number;
      lastError: string;
    }
  | { type: "drained" }
  | { type: "error"; message: string };

const send = (report: SwarmReport) => process.send!(report);
/** Epoch milliseconds, sub-millisecond: the same clock the parent reads. */
const epochMs = () => performance.timeOrigin + performance.now();

let mode: SwarmMode = "ended-only";
let version: number = PROTOCOL_VERSION;
let pushes: [string, number][] = [];
let ended: string[] = [];
let frames = 0;
let errors = 0;
let lastError = "";
const sockets: WebSocket[] = [];

/** Progress goes to the parent in batches: every few milliseconds, not per job. */
const flushTimer = setInterval(flush, 10);

function flush(): void {
  if (pushes.length === 0 && ended.length === 0 && frames === 0 && errors === 0) return;
  send({ type: "progress", pushes, ended, frames, errors, lastError });
  pushes = [];
  ended = [];
  frames = 0;
  errors = 0;
}

class SwarmPilot {
  private frameSeq = 0;
  private readonly tcp: { cork(): void; uncork(): void } | undefined;
  private corked = false;

  constructor(private readonly socket: WebSocket) {
    this.tcp = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
  }

  send(message: Record<string, unknown>): void {
    this.frameSeq++;
    if (!this.corked && this.tcp) {
      this.corked = true;
      this.tcp.cork();
      process.nextTick(() => {
        this.corked = false;
        this.tcp!.uncork();
      });
    }
    message.v = version;
    message.id = `f${this.frameSeq}`;
    this.socket.send(encode(message));
  }

  onFrame(frame: {
    type: string;
    thread?: string;
    job?: { jobId: string; attempt: number };
    code?: string;
    message?: string;
  }) {
    if (frame.type === "error") {
      errors++;
      lastError = `${frame.code} ${frame.message}`;
      return;
    }
    if (frame.type !== "job.push" || !frame.job) return;
    const { jobId, attempt } = frame.job;
    pushes.push([jobId, epochMs()]);
    if (mode === "lifecycle") {
      this.send({ type: "job.ack", jobId, attempt });
      this.send({ type: "job.status", jobId, attempt, state: "starting" });
      this.send({ type: "job.status", jobId, attempt, state: "running" });
    }
    this.send({ type: "job.ended", jobId, attempt, outcome: "finished", exitCode: 0, outputs: [] });
    ended.push(jobId);
    this.send({ type: "pilot.ready", thread: frame.thread });
  }
}

async function connect(url: string, token: string, site: string, index: number): Promise<void> {
  const socket = new WebSocket(url, [`panda.v${version}`], {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
  });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const pilot = new SwarmPilot(socket);
  const welcomed = new Promise<void>((resolve) => {
    socket.on("message", (data) => {
      frames++;
      const frame = decode(data as Buffer) as Parameters<SwarmPilot["onFrame"]>[0];
      if (frame.type === "pilot.welcome") {
        resolve();
        pilot.send({ type: "pilot.ready", thread: "primary" });
        return;
      }
      pilot.onFrame(frame);
    });
  });
  pilot.send({
    type: "pilot.hello",
    site,
    hostname: `bench-wn${index}`,
    cores: 1,
    memoryMb: 4000,
    diskMb: 100_000,
    walltimeLeftSec: 86_400,
    multitask: false,
    agent: "panda-bench",
  });
  await welcomed;
}

process.on("message", (command: SwarmCommand) => {
  void (async () => {
    try {
      switch (command.cmd) {
        case "start":
          version = command.version;
          for (let i = 0; i < command.pilots; i += 50) {
            const batch = Array.from({ length: Math.min(50, command.pilots - i) }, (_, j) =>
              connect(command.url, command.token, command.site, i + j),
            );
            await Promise.all(batch);
          }
          send({ type: "started" });
          return;
        case "mode":
          flush();
          mode = command.mode;
          send({ type: "moded" });
          return;
        case "drain":
          flush();
          send({ type: "drained" });
          return;
        case "cpu": {
          const usage = process.cpuUsage();
          send({ type: "cpu", ms: (usage.user + usage.system) / 1000 });
          return;
        }
        case "stop":
          clearInterval(flushTimer);
          await Promise.all(
            sockets.map(
              (socket) =>
                new Promise<void>((resolve) => {
                  if (socket.readyState === WebSocket.CLOSED) return resolve();
                  socket.once("close", () => resolve());
                  socket.close(1000, "bench over");
                }),
            ),
          );
          process.exit(0);
      }
    } catch (err) {
      send({ type: "error", message: (err as Error).message });
    }
  })();
});
