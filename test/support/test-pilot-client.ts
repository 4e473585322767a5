/**
 * A protocol-level pilot for tests and benchmarks: it speaks the wire
 * protocol over a real WebSocket (hello, reports, acks) without running
 * payloads, so a test drives the server frame by frame.
 */
import WebSocket from "ws";
import type { z } from "zod";
import { decode, encode, validate } from "../../src/protocol/codec.js";
import {
  ackedRefs,
  type PilotMessageInput,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  type pilotHelloSchema,
  type ServerMessage,
  serverMessageSchema,
  subprotocolOf,
  versionOfSubprotocol,
} from "../../src/protocol/messages.js";
import { tcpSocketOf } from "../../src/protocol/socket-cork.js";

type WithoutEnvelope<M> = M extends unknown ? Omit<M, "v" | "id"> & { id?: string } : never;
/** A pilot message without `v`; `id` is filled in when absent. */
export type PilotMessageDraft = WithoutEnvelope<PilotMessageInput>;
export type HelloDraft = Omit<z.input<typeof pilotHelloSchema>, "v" | "id" | "type"> & { id?: string };
export type ServerMessageOf<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

export interface TestPilotOptions {
  /** The protocol version to speak (its subprotocol is offered); default the newest. */
  version?: ProtocolVersion;
  /** Subprotocols offered, instead of the version's own (to test negotiation). */
  subprotocols?: string[];
  /** Send the token as `?token=` instead of an `Authorization` header. */
  tokenInQuery?: boolean;
  /** False makes a pilot that never answers pings (to test liveness). */
  autoPong?: boolean;
  /** How long `next()` waits by default. */
  timeoutMs?: number;
}

/** The server refused the WebSocket upgrade with an HTTP status. */
export class HandshakeRefusedError extends Error {
  override readonly name = "HandshakeRefusedError";
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body.trim()}`);
  }
}

/** The server answered the hello with an error frame instead of a welcome. */
export class HelloRefusedError extends Error {
  override readonly name = "HelloRefusedError";
  constructor(readonly frame: ServerMessageOf<"error">) {
    super(`hello refused: ${frame.code} ${frame.message}`);
  }
}

/** The socket closed before the frame asked for arrived. */
export class TestPilotClosedError extends Error {
  override readonly name = "TestPilotClosedError";
  constructor(readonly code: number) {
    super(`the socket closed (${code}) before the awaited frame`);
  }
}

interface Waiter {
  type: ServerMessage["type"] | undefined;
  resolve(frame: ServerMessage): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A minimal pilot for tests and benchmarks: it speaks the wire protocol and
 * nothing more (no jobs, no retries). Frames it receives are kept until read.
 */
export class TestPilot {
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly received: ServerMessage[] = [];
  private readonly waiters: Waiter[] = [];
  /** Refs of ack frames already taken by `acked()`, not returned yet. */
  private readonly ackedBacklog: string[] = [];
  private closeCode: number | undefined;
  private sent = 0;
  /** Set by `connectTestPilot` once the server welcomed the hello. */
  welcome: ServerMessageOf<"pilot.welcome"> | undefined;

  constructor(
    readonly socket: WebSocket,
    private readonly timeoutMs: number,
  ) {
    socket.on("message", (data, isBinary) => this.receive(data as Buffer, isBinary));
    this.closed = new Promise((resolve) => {
      socket.on("close", (code, reason) => {
        this.closeCode = code;
        for (const waiter of this.waiters.splice(0)) this.settle(waiter, new TestPilotClosedError(code));
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  get pilotId(): string {
    if (!this.welcome) throw new Error("no welcome yet");
    return this.welcome.pilotId;
  }

  get resumeToken(): string {
    if (!this.welcome) throw new Error("no welcome yet");
    return this.welcome.resumeToken;
  }

  /** The version the upgrade negotiated (the subprotocol the server echoed). */
  get version(): ProtocolVersion {
    const version = versionOfSubprotocol(this.socket.protocol);
    if (version === undefined) throw new Error(`no protocol version negotiated (${this.socket.protocol})`);
    return version;
  }

  /** Sends a message (adding the socket's `v`, and an `id` when absent) and returns its id. */
  send(message: PilotMessageDraft): string {
    this.sent += 1;
    const id = message.id ?? `t-${this.sent}`;
    this.socket.send(encode({ ...message, v: this.version, id }));
    return id;
  }

  /**
   * Sends messages in one TCP write (the socket corked meanwhile), so that
   * the server reads them in one turn, as a pilot's reports often arrive.
   */
  sendTogether(messages: (PilotMessageDraft | Buffer)[]): (string | undefined)[] {
    const tcp = tcpSocketOf(this.socket);
    tcp?.cork();
    try {
      return messages.map((message) => {
        if (!Buffer.isBuffer(message)) return this.send(message);
        this.sendRaw(message);
        return undefined;
      });
    } finally {
      tcp?.uncork();
    }
  }

  /** Sends bytes or text as they are, for tests of what the server does with bad frames. */
  sendRaw(data: Buffer | string): void {
    this.socket.send(data);
  }

  /** The first received frame of `type` (any type if omitted) not read yet, waiting for it if needed. */
  next<T extends ServerMessage["type"]>(type?: T, timeoutMs = this.timeoutMs): Promise<ServerMessageOf<T>> {
    const index = this.received.findIndex((frame) => type === undefined || frame.type === type);
    if (index >= 0) return Promise.resolve(this.received.splice(index, 1)[0] as ServerMessageOf<T>);
    if (this.closeCode !== undefined) return Promise.reject(new TestPilotClosedError(this.closeCode));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        type,
        resolve: resolve as (frame: ServerMessage) => void,
        reject,
        timer: undefined,
      };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`no ${type ?? "frame"} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** The next frame id the server acknowledged, whichever ack frame (one ref or several) carried it. */
  async acked(timeoutMs = this.timeoutMs): Promise<string> {
    if (this.ackedBacklog.length === 0)
      this.ackedBacklog.push(...ackedRefs(await this.next("ack", timeoutMs)));
    return this.ackedBacklog.shift()!;
  }

  /** Every frame, in order, until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ServerMessage> {
    for (;;) {
      try {
        yield await this.next(undefined, Number.POSITIVE_INFINITY);
      } catch (err) {
        if (err instanceof TestPilotClosedError) return;
        throw err;
      }
    }
  }

  close(code = 1000, reason = ""): Promise<{ code: number; reason: string }> {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason);
    return this.closed;
  }

  private receive(data: Buffer, isBinary: boolean): void {
    let frame: ServerMessage;
    try {
      if (!isBinary) throw new Error("the server sent a text frame");
      frame = validate(serverMessageSchema, decode(data), "server message");
    } catch (err) {
      // A server that breaks the contract fails the test that is waiting.
      for (const waiter of this.waiters.splice(0)) this.settle(waiter, err as Error);
      return;
    }
    const index = this.waiters.findIndex((waiter) => waiter.type === undefined || waiter.type === frame.type);
    const waiter = index >= 0 ? this.waiters.splice(index, 1)[0] : undefined;
    if (waiter) this.settle(waiter, frame);
    else this.received.push(frame);
  }

  private settle(waiter: Waiter, outcome: ServerMessage | Error): void {
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }
}

/** A pilot whose hello was welcomed. */
export type ConnectedTestPilot = TestPilot & { readonly welcome: ServerMessageOf<"pilot.welcome"> };

/** Opens the socket (no hello yet); rejects with `HandshakeRefusedError` when the server refuses the upgrade. */
export function openTestPilot(
  url: string,
  token: string,
  options: TestPilotOptions = {},
): Promise<TestPilot> {
  const target = new URL(url);
  if (options.tokenInQuery) target.searchParams.set("token", token);
  const offered = options.subprotocols ?? [subprotocolOf(options.version ?? PROTOCOL_VERSION)];
  const socket = new WebSocket(target, offered, {
    headers: options.tokenInQuery ? {} : { authorization: `Bearer ${token}` },
    autoPong: options.autoPong ?? true,
  });
  const pilot = new TestPilot(socket, options.timeoutMs ?? 5_000);
  return new Promise((resolve, reject) => {
    socket.once("open", () => resolve(pilot));
    socket.on("error", reject);
    socket.once("unexpected-response", (request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => {
        reject(new HandshakeRefusedError(response.statusCode ?? 0, body));
        request.destroy();
      });
    });
  });
}

/**
 * Opens the socket, says hello and resolves on the welcome; rejects with
 * `HelloRefusedError` when the server answers the hello with an error frame.
 */
export async function connectTestPilot(
  url: string,
  token: string,
  hello: HelloDraft,
  options: TestPilotOptions = {},
): Promise<ConnectedTestPilot> {
  const pilot = await openTestPilot(url, token, options);
  const helloId = pilot.send({ type: "pilot.hello", ...hello });
  for (;;) {
    const frame = await pilot.next();
    if (frame.type === "error" && frame.ref === helloId) {
      await pilot.close();
      throw new HelloRefusedError(frame);
    }
    if (frame.type === "pilot.welcome") {
      pilot.welcome = frame;
      return pilot as ConnectedTestPilot;
    }
  }
}
