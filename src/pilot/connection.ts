/**
 * The pilot's one WebSocket to the server. Offers every protocol version it
 * speaks (the server picks the newest it speaks too) and stamps the chosen one
 * on every frame. Says hello on every socket it opens (with the last
 * welcome's id and resume token once it has them), validates every incoming
 * frame, and after a dropped socket dials again with exponential backoff
 * until `close()`. Frames other than the hello go out only while a session is
 * open; `send` says whether one did. Frames are paced under the rate the
 * server announced in its welcome (a frame over it would be dropped there),
 * and the frames of one turn go out in one write.
 */
import WebSocket, { type RawData } from "ws";
import { CodecError, decodeWith, encodeFrame, validate } from "../protocol/codec.js";
import {
  closeCodes,
  PROTOCOL_SUBPROTOCOLS,
  type ProtocolVersion,
  pilotMessageSchema,
  type ServerMessage,
  serverMessageSchema,
  versionOfSubprotocol,
} from "../protocol/messages.js";
import { tcpSocketOf } from "../protocol/socket-cork.js";
import { TokenBucket } from "../protocol/token-bucket.js";
import { reconnectDelayMs } from "./backoff.js";
import { type FrameIds, makeFrame, type PilotFrame, type PilotFrameBody } from "./frames.js";
import { messageOf, type PilotLog } from "./log.js";

export type PilotWelcome = Extract<ServerMessage, { type: "pilot.welcome" }>;
type HelloBody = Omit<Extract<PilotFrameBody, { type: "pilot.hello" }>, "type" | "resume">;

export interface ConnectionHandlers {
  /** The hello's resources, asked again on every connect (walltime left keeps falling). */
  hello(): Promise<HelloBody>;
  /** A session is open: the server knows the pilot and frames may be sent. */
  onWelcome(welcome: PilotWelcome): void;
  /** Every other valid server frame. */
  onMessage(message: Exclude<ServerMessage, { type: "pilot.welcome" }>): void;
  /** Once per `heartbeatMs` while a session is open. */
  onHeartbeat(): void;
  /** The server refused the credential; the connection has stopped for good. */
  onUnauthorized(reason: string): void;
}

/** A server frame larger than this is refused by the socket (job specs are small). */
const MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** An open socket that brings no welcome in this long is given up and dialled again. */
const WELCOME_TIMEOUT_MS = 15_000;
/** A socket silent (no frame, no pong) for this many heartbeat periods is taken for dead. */
const SILENT_HEARTBEATS_BEFORE_DEAD = 3;
const CLOSE_WAIT_MS = 1_000;
/**
 * The pilot keeps this share of the server's frame rate, and half its burst:
 * frames bunched by the network on the way still fit the server's bucket.
 */
const PACE_RATE_SHARE = 0.9;
const PACE_BURST_SHARE = 0.5;

/** `http(s)://host/base` or `ws(s)://host/base` -> `ws(s)://host/base/pilot`. */
export function pilotSocketUrl(serverUrl: string): string {
  const url = new URL(serverUrl);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/pilot`;
  return url.toString();
}

export class PilotConnection {
  private socket: WebSocket | undefined;
  /** The version the current socket negotiated. */
  private version: ProtocolVersion | undefined;
  /** The socket whose writes are held until the end of this turn. */
  private heldSocket: WebSocket | undefined;
  private welcomed = false;
  private closing = false;
  private failures = 0;
  private pilotId: string | undefined;
  private resumeToken: string | undefined;
  private lastHeardAtMs = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** The session's pace, from the welcome; none when the server announced no limit. */
  private pace: TokenBucket | undefined;
  /** Frames waiting for the pace, oldest first; dropped with their socket (reports stay in the outbox). */
  private readonly paced: PilotFrame[] = [];
  private paceTimer: NodeJS.Timeout | undefined;

  /** Which of `urls` the next dial goes to: the next one after a dropped socket. */
  private urlIndex = 0;
  private readonly urls: readonly string[];

  constructor(
    /** One server's socket URL, or several nodes' of one grid, dialled in turn. */
    urls: string | readonly string[],
    private readonly token: string,
    private readonly ids: FrameIds,
    private readonly handlers: ConnectionHandlers,
    private readonly log: PilotLog,
  ) {
    this.urls = typeof urls === "string" ? [urls] : urls;
  }

  private get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  get sessionOpen(): boolean {
    return this.welcomed && this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.dial();
  }

  /** Sends a frame (now, or as soon as the pace allows) if a session is open; false when it could not go out. */
  send(frame: PilotFrame): boolean {
    const socket = this.socket;
    if (!this.welcomed || socket === undefined || socket.readyState !== WebSocket.OPEN) return false;
    if (this.paced.length > 0 || (this.pace !== undefined && !this.pace.tryTake())) {
      this.paced.push(frame);
      this.schedulePaced();
      return true;
    }
    this.transmit(socket, frame);
    return true;
  }

  private schedulePaced(): void {
    if (this.paceTimer !== undefined || this.pace === undefined) return;
    this.paceTimer = setTimeout(() => {
      this.paceTimer = undefined;
      this.sendPaced();
    }, this.pace.msUntilToken());
  }

  private sendPaced(): void {
    const socket = this.socket;
    if (!this.welcomed || socket === undefined || socket.readyState !== WebSocket.OPEN) {
      this.dropPaced();
      return;
    }
    while (this.paced.length > 0 && (this.pace === undefined || this.pace.tryTake()))
      this.transmit(socket, this.paced.shift()!);
    if (this.paced.length > 0) this.schedulePaced();
  }

  private dropPaced(): void {
    this.paced.length = 0;
    clearTimeout(this.paceTimer);
    this.paceTimer = undefined;
  }

  /** Ends the session politely (the server then knows the pilot left) and stops reconnecting. */
  async close(reason = "pilot done"): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.stopSessionTimers();
    const socket = this.socket;
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    if (socket.readyState === WebSocket.OPEN) socket.close(1000, reason);
    else socket.terminate();
    const timer = setTimeout(() => socket.terminate(), CLOSE_WAIT_MS);
    await closed;
    clearTimeout(timer);
  }

  private dial(): void {
    if (this.closing) return;
    const socket = new WebSocket(this.url, [...PROTOCOL_SUBPROTOCOLS], {
      headers: { authorization: `Bearer ${this.token}` },
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: MAX_SERVER_FRAME_BYTES,
    });
    this.socket = socket;
    this.version = undefined;
    this.welcomed = false;
    let refusedStatus: number | undefined;
    socket.on("unexpected-response", (_req, res) => {
      refusedStatus = res.statusCode;
      res.resume();
      socket.terminate();
    });
    socket.on("open", () => {
      this.version = versionOfSubprotocol(socket.protocol);
      if (this.version === undefined) {
        // ws already refuses a subprotocol that was not offered; this is a server that chose none.
        this.log.warn("the server chose no protocol version; dialling again", { protocol: socket.protocol });
        socket.terminate();
        return;
      }
      this.lastHeardAtMs = Date.now();
      this.welcomeTimer = setTimeout(() => {
        this.log.warn("no welcome from the server; dialling again", { waitedMs: WELCOME_TIMEOUT_MS });
        socket.terminate();
      }, WELCOME_TIMEOUT_MS);
      this.sayHello(socket).catch((err: unknown) => {
        this.log.error("could not say hello", { error: messageOf(err) });
        socket.terminate();
      });
    });
    socket.on("message", (data, isBinary) => this.receive(socket, data, isBinary));
    socket.on("pong", () => {
      this.lastHeardAtMs = Date.now();
    });
    socket.on("error", (err) => {
      if (socket === this.socket) this.log.warn("socket error", { error: err.message });
    });
    socket.on("close", (code, reason) => this.onClose(socket, code, reason.toString(), refusedStatus));
  }

  private async sayHello(socket: WebSocket): Promise<void> {
    const body = await this.handlers.hello();
    if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
    const resume =
      this.pilotId !== undefined && this.resumeToken !== undefined
        ? { pilotId: this.pilotId, token: this.resumeToken }
        : undefined;
    const hello = makeFrame(this.ids, { type: "pilot.hello", ...body, ...(resume ? { resume } : {}) });
    this.transmit(socket, hello);
    this.log.info("hello sent", { url: this.url, resuming: resume !== undefined, pilotId: this.pilotId });
  }

  private transmit(socket: WebSocket, frame: PilotFrame): void {
    // Checking our own frames keeps a pilot bug from reaching the server as a protocol violation.
    const checked = validate(pilotMessageSchema, { ...frame, v: this.version }, `pilot frame ${frame.type}`);
    this.holdTurn(socket);
    socket.send(encodeFrame(checked), { binary: true });
  }

  /**
   * Holds the socket's writes until the end of this turn: the frames made
   * together (a push's ack and its first report, the resends after a resume)
   * then cost one write, on both sides.
   */
  private holdTurn(socket: WebSocket): void {
    if (this.heldSocket === socket) return;
    const tcp = tcpSocketOf(socket);
    if (tcp === undefined) return;
    this.heldSocket = socket;
    tcp.cork();
    setImmediate(() => {
      if (this.heldSocket === socket) this.heldSocket = undefined;
      tcp.uncork();
    });
  }

  private receive(socket: WebSocket, data: RawData, isBinary: boolean): void {
    if (socket !== this.socket) return;
    this.lastHeardAtMs = Date.now();
    if (!isBinary) {
      this.log.warn("text frame from the server ignored");
      return;
    }
    let message: ServerMessage;
    try {
      message = decodeWith(serverMessageSchema, bytesOf(data), "server frame");
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.log.warn("malformed server frame ignored", { code: err.code, error: err.message });
      return;
    }
    if (message.type === "pilot.welcome") {
      this.onWelcome(socket, message);
      return;
    }
    this.handlers.onMessage(message);
  }

  private onWelcome(socket: WebSocket, welcome: PilotWelcome): void {
    clearTimeout(this.welcomeTimer);
    this.pilotId = welcome.pilotId;
    this.resumeToken = welcome.resumeToken;
    this.log.addSecret(welcome.resumeToken);
    this.welcomed = true;
    this.failures = 0;
    this.dropPaced();
    this.pace = welcome.frameRate
      ? new TokenBucket(
          welcome.frameRate.perSec * PACE_RATE_SHARE,
          Math.max(1, Math.floor(welcome.frameRate.burst * PACE_BURST_SHARE)),
        )
      : undefined;
    this.log.info("welcome", {
      pilotId: welcome.pilotId,
      heartbeatMs: welcome.heartbeatMs,
      frameRate: welcome.frameRate,
      jobs: welcome.jobs.length,
    });
    this.startHeartbeat(socket, welcome.heartbeatMs);
    this.handlers.onWelcome(welcome);
  }

  /** Pings the server each period: a socket that went dead without a close would otherwise hang forever. */
  private startHeartbeat(socket: WebSocket, heartbeatMs: number): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastHeardAtMs > SILENT_HEARTBEATS_BEFORE_DEAD * heartbeatMs) {
        this.log.warn("server silent; dropping the socket", { silentMs: Date.now() - this.lastHeardAtMs });
        socket.terminate();
        return;
      }
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.ping();
      this.handlers.onHeartbeat();
    }, heartbeatMs);
  }

  private stopSessionTimers(): void {
    clearTimeout(this.welcomeTimer);
    clearInterval(this.heartbeatTimer);
    this.dropPaced();
  }

  private onClose(socket: WebSocket, code: number, reason: string, refusedStatus: number | undefined): void {
    if (socket !== this.socket) return;
    this.stopSessionTimers();
    this.welcomed = false;
    if (this.closing) return;
    if (code === closeCodes.unauthorized || refusedStatus === 401 || refusedStatus === 403) {
      this.closing = true;
      this.handlers.onUnauthorized(refusedStatus !== undefined ? `HTTP ${refusedStatus}` : reason);
      return;
    }
    const delayMs = reconnectDelayMs(this.failures++);
    // Another node of the grid, if the pilot knows several: the one it was on may be going away.
    this.urlIndex++;
    this.log.warn("socket closed; reconnecting", { code, reason, refusedStatus, delayMs, url: this.url });
    this.reconnectTimer = setTimeout(() => this.dial(), delayMs);
  }
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
