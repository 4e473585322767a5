import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type WebSocket, WebSocketServer } from "ws";
import { decodeWith, encode } from "../../src/protocol/codec.js";
import {
  closeCodes,
  type JobSpec,
  type PilotMessage,
  PROTOCOL_VERSIONS,
  type ProtocolVersion,
  pilotMessageSchema,
  type ServerMessage,
  subprotocolOf,
  type Thread,
  versionOfSubprotocol,
} from "../../src/protocol/messages.js";
import { TokenBucket } from "../../src/protocol/token-bucket.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import { DirectoryStorageElement } from "../../src/transfer/directory-storage-element.js";
import { storageUrl } from "../../src/transfer/http-client.js";
import { createStorageHandler } from "../../src/transfer/storage-http.js";

export const SITE = "TEST";
export const TOKEN = "pilot-secret-token-0123456789";
const OUTPUT_DIR = "out";

type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type ServerFrameBody = OmitEach<ServerMessage, "v" | "id">;
type FrameOf<T extends PilotMessage["type"]> = Extract<PilotMessage, { type: T }>;

export interface FakeServerOptions {
  heartbeatMs?: number;
  /** Whether a report gets its ack; every one does unless this says no. */
  shouldAck?: (report: FrameOf<"job.status" | "job.ended">) => boolean;
  /** Closes every session with 4001 right after the hello. */
  refuseSessions?: boolean;
  /** The protocol versions this server speaks (the newest the pilot offers is chosen); default all. */
  versions?: readonly ProtocolVersion[];
  /** Keeps the acks of reports until `releaseAcks()`, which sends them together. */
  holdAcks?: boolean;
  /** Announced in the welcome and enforced as the real server does: a frame over it is dropped with RATE_LIMITED. */
  frameRate?: { perSec: number; burst: number };
  /** Frames to drop unread with RATE_LIMITED whatever the rate (say, the first ready). */
  dropUnread?: (frame: PilotMessage) => boolean;
}

interface Waiter {
  matches(frame: PilotMessage, index: number): boolean;
  resolve(frame: PilotMessage): void;
}

/**
 * The server side of the pilot protocol, just enough of it to drive a real
 * pilot process: sessions with resume, acks, pushes and kills, plus storage
 * (GET/PUT under /storage/TEST/) in a temp directory on the same origin.
 */
export class FakeServer {
  /** Every valid frame from the pilot, from every socket, in arrival order. */
  readonly received: PilotMessage[] = [];
  /** Frames dropped unread with RATE_LIMITED (over `frameRate`, or chosen by `dropUnread`). */
  readonly droppedUnread: PilotMessage[] = [];
  /** Frames that failed the pilot schema: a pilot bug, which the tests check stays empty. */
  readonly invalid: string[] = [];
  /** Jobs pushed and not yet ended (acked), as a welcome after a resume lists them. */
  readonly assigned = new Map<string, { jobId: string; attempt: number; thread: Thread }>();
  sessions = 0;
  /** The protocol version each socket negotiated, in order. */
  readonly negotiated: ProtocolVersion[] = [];
  /** Every ack frame sent, as the refs it acknowledged (version 2 batches a turn's into one). */
  readonly acks: string[][] = [];
  private heldAcks: string[] = [];
  private socket: WebSocket | undefined;
  private version: ProtocolVersion = 1;
  /** Version 2: refs acknowledged this turn, sent in one ack at its end. */
  private pendingAcks: string[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly listeners: ((frame: PilotMessage) => void)[] = [];
  readonly pilotId = `pilot-${randomBytes(4).toString("hex")}`;
  readonly resumeToken = randomBytes(24).toString("hex");
  private nextFrame = 1;
  private nextJob = 1;

  private constructor(
    readonly url: string,
    readonly storage: DirectoryStorageElement,
    private readonly storageDir: string,
    private readonly httpServer: http.Server,
    private readonly wss: WebSocketServer,
    private readonly options: FakeServerOptions,
  ) {
    wss.on("connection", (socket) => this.accept(socket));
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const storageDir = await mkdtemp(join(tmpdir(), "panda-pilot-se-"));
    const storage = new DirectoryStorageElement(storageDir);
    const handleStorage = createStorageHandler({
      elements: new Map([[SITE, storage]]),
      authorize: (req, _site, operation) =>
        operation === "read" || req.headers.authorization === `Bearer ${TOKEN}`,
      maxPutBytes: 10_000_000,
    });
    const httpServer = http.createServer((req, res) => {
      if (!handleStorage(req, res)) res.writeHead(404).end();
    });
    const spoken = options.versions ?? PROTOCOL_VERSIONS;
    const wss = new WebSocketServer({
      server: httpServer,
      path: "/pilot",
      handleProtocols: (offered) => {
        const version = [...spoken].reverse().find((v) => offered.has(subprotocolOf(v)));
        return version === undefined ? false : subprotocolOf(version);
      },
      verifyClient: ({ req }, done) =>
        req.headers.authorization === `Bearer ${TOKEN}` ? done(true) : done(false, 401, "Unauthorized"),
    });
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    return new FakeServer(url, storage, storageDir, httpServer, wss, options);
  }

  get uploadUrl(): string {
    return storageUrl(this.url, SITE, OUTPUT_DIR);
  }

  /** Calls `listener` with every frame from now on, before any waiter hears of it. */
  onFrame(listener: (frame: PilotMessage) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The first frame of a type (and matching `where`) at or after index `from`
   * of `received`: one already there, or the next to arrive.
   */
  waitFor<T extends PilotMessage["type"]>(
    type: T,
    where: (frame: FrameOf<T>) => boolean = () => true,
    from = 0,
  ): Promise<FrameOf<T>> {
    const matches = (frame: PilotMessage, index: number): frame is FrameOf<T> =>
      index >= from && frame.type === type && where(frame as FrameOf<T>);
    const index = this.received.findIndex((frame, i) => matches(frame, i));
    if (index >= 0) return Promise.resolve(this.received[index] as FrameOf<T>);
    return new Promise((resolve) => {
      const waiter: Waiter = { matches, resolve: (frame) => resolve(frame as FrameOf<T>) };
      this.waiters.add(waiter);
    });
  }

  /** The `job.ended` report for a job. */
  ended(jobId: string, from = 0): Promise<FrameOf<"job.ended">> {
    return this.waitFor("job.ended", (frame) => frame.jobId === jobId, from);
  }

  /** The pilot's frames of one type, in order. */
  all<T extends PilotMessage["type"]>(type: T): FrameOf<T>[] {
    return this.received.filter((frame): frame is FrameOf<T> => frame.type === type);
  }

  indexOf(frame: PilotMessage): number {
    return this.received.indexOf(frame);
  }

  /** The pilot's frames of one type that came after `frame`. */
  after<T extends PilotMessage["type"]>(frame: PilotMessage, type: T): FrameOf<T>[] {
    return this.received
      .slice(this.indexOf(frame) + 1)
      .filter((later): later is FrameOf<T> => later.type === type);
  }

  send(body: ServerFrameBody): void {
    this.sendBytes(encode({ ...body, v: this.version, id: `s-${this.nextFrame++}` }));
  }

  sendBytes(bytes: Uint8Array): void {
    if (this.socket === undefined) throw new Error("no pilot connected");
    this.socket.send(bytes, { binary: true });
  }

  /** Pushes a job (defaults: a production job running `true` for 60 s at most); answers its spec. */
  push(thread: Thread, job: Partial<JobSpec> = {}): JobSpec {
    const spec: JobSpec = {
      jobId: `job-${this.nextJob++}`,
      attempt: 1,
      taskId: "task-1",
      type: thread === "primary" ? "production" : "analysis",
      command: ["true"],
      env: {},
      walltimeSec: 60,
      inputs: [],
      uploadUrl: this.uploadUrl,
      outputs: [],
      ...job,
    };
    this.assigned.set(`${spec.jobId}/${spec.attempt}`, { jobId: spec.jobId, attempt: spec.attempt, thread });
    this.send({ type: "job.push", thread, job: spec });
    return spec;
  }

  kill(jobId: string, attempt = 1, reason = "killed by a test"): void {
    this.send({ type: "job.kill", jobId, attempt, reason });
  }

  /** Cuts the socket without a close handshake, as a network failure would. */
  dropSocket(): void {
    this.socket?.terminate();
  }

  /** Stores a file the pilot can fetch; answers it as a job input. */
  async addInput(lfn: string, data: Buffer): Promise<JobSpec["inputs"][number]> {
    const expected = { sizeBytes: data.length, checksum: checksumOfBytes(data) };
    await this.storage.put(`in/${lfn}`, data, expected);
    return { lfn, ...expected, url: storageUrl(this.url, SITE, `in/${lfn}`) };
  }

  /** The bytes the pilot uploaded under `lfn`, or null. */
  async uploaded(lfn: string): Promise<Buffer | null> {
    if ((await this.storage.stat(`${OUTPUT_DIR}/${lfn}`)) === null) return null;
    return readFile(join(this.storageDir, OUTPUT_DIR, lfn));
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.httpServer.closeAllConnections();
    await new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    await rm(this.storageDir, { recursive: true, force: true });
  }

  private accept(socket: WebSocket): void {
    const version = versionOfSubprotocol(socket.protocol);
    if (version === undefined) throw new Error(`no protocol version negotiated (${socket.protocol})`);
    this.socket = socket;
    this.version = version;
    this.pendingAcks = [];
    this.negotiated.push(version);
    const rate = this.options.frameRate;
    const bucket = rate ? new TokenBucket(rate.perSec, rate.burst) : undefined;
    // After ws's own listener turned the bytes into messages: the read's reports are acknowledged together.
    const tcp = (socket as unknown as { _socket: NodeJS.EventEmitter })._socket;
    tcp.on("data", () => this.sendAcks(this.pendingAcks.splice(0)));
    socket.on("message", (data) => {
      let frame: PilotMessage;
      try {
        frame = decodeWith(pilotMessageSchema, data as Buffer, "pilot frame");
      } catch (err) {
        this.invalid.push((err as Error).message);
        return;
      }
      if (frame.v !== version) {
        this.invalid.push(`${frame.type} ${frame.id}: v ${frame.v} on a version ${version} socket`);
        return;
      }
      if ((bucket !== undefined && !bucket.tryTake()) || this.options.dropUnread?.(frame)) {
        this.droppedUnread.push(frame);
        this.send({
          type: "error",
          code: "RATE_LIMITED",
          message: "frame dropped, resend it later",
          ref: frame.id,
        });
        return;
      }
      this.handle(socket, frame);
    });
  }

  /** Sends the acks kept by `holdAcks`: in one frame on version 2, one each on version 1. */
  releaseAcks(): void {
    this.sendAcks(this.heldAcks.splice(0));
  }

  /** Version 1: an ack per report, at once. Version 2: one ack for the reports of one TCP read. */
  private acknowledge(ref: string): void {
    if (this.options.holdAcks) this.heldAcks.push(ref);
    else if (this.version === 1) this.sendAcks([ref]);
    else this.pendingAcks.push(ref);
  }

  private sendAcks(refs: string[]): void {
    if (refs.length === 0) return;
    if (this.version === 2) {
      this.acks.push(refs);
      this.send({ type: "ack", refs });
      return;
    }
    for (const ref of refs) {
      this.acks.push([ref]);
      this.send({ type: "ack", ref });
    }
  }

  private handle(socket: WebSocket, frame: PilotMessage): void {
    if (frame.type === "pilot.hello") this.welcome(socket, frame);
    if (
      (frame.type === "job.status" || frame.type === "job.ended") &&
      this.options.shouldAck?.(frame) !== false
    ) {
      if (frame.type === "job.ended") this.assigned.delete(`${frame.jobId}/${frame.attempt}`);
      this.acknowledge(frame.id);
    }
    const index = this.received.push(frame) - 1;
    for (const listener of this.listeners) listener(frame);
    for (const waiter of this.waiters) {
      if (waiter.matches(frame, index)) {
        this.waiters.delete(waiter);
        waiter.resolve(frame);
      }
    }
  }

  private welcome(socket: WebSocket, hello: FrameOf<"pilot.hello">): void {
    this.sessions += 1;
    if (this.options.refuseSessions) {
      socket.close(closeCodes.unauthorized, "credential revoked");
      return;
    }
    const resumed = hello.resume?.pilotId === this.pilotId && hello.resume.token === this.resumeToken;
    this.send({
      type: "pilot.welcome",
      ref: hello.id,
      pilotId: this.pilotId,
      resumeToken: this.resumeToken,
      heartbeatMs: this.options.heartbeatMs ?? 200,
      ...(this.options.frameRate ? { frameRate: this.options.frameRate } : {}),
      jobs: resumed ? [...this.assigned.values()] : [],
    });
  }
}
