/**
 * One upgraded socket: reads and checks frames, limits their rate, feeds them
 * to the host in arrival order, answers pings and closes; its `FrameWriter`
 * writes. It knows nothing of hellos or jobs; the session it carries, once
 * the hello is accepted, is set by the gateway.
 */
import WebSocket from "ws";
import {
  closeCodes,
  type PilotMessage,
  type ProtocolErrorCode,
  type ProtocolVersion,
  type ServerMessage,
} from "../protocol/messages.js";
import { TokenBucket } from "../protocol/token-bucket.js";
import type { Logger } from "../runtime/logger.js";
import type { EndOfTurn } from "./end-of-turn.js";
import { FrameWriter, type FrameWriterHost } from "./frame-writer.js";
import { type DecodedFrame, decodePilotFrame, errorFrame, frameIdOfBytes } from "./frames.js";
import type { PilotPrincipal } from "./handlers.js";
import type { GatewayLimits } from "./options.js";
import type { GatewaySession } from "./session.js";

/** What a connection needs from the gateway that owns it. */
export interface ConnectionHost {
  /**
   * Messages in arrival order, up to `maxConcurrentMessages` at once (one at a
   * time until the hello is accepted). The host answers each: with an error
   * frame, or through `acknowledge`.
   */
  handle(connection: PilotConnection, message: PilotMessage): Promise<void>;
  /** Exactly once per connection, after the last `handle` settled. */
  closed(connection: PilotConnection, reason: string): void;
}

type ConnectionLimits = Pick<
  GatewayLimits,
  | "ratePerSec"
  | "burst"
  | "maxConsecutiveRateLimitedFrames"
  | "maxConsecutiveBadFrames"
  | "helloTimeoutMs"
  | "maxQueuedMessages"
  | "maxConcurrentMessages"
  | "maxBufferedBytes"
  | "ackHoldMs"
  | "heartbeatMs"
>;

/** How far past `maxBufferedBytes` owed answers may pile up before the pilot counts as not reading. */
const UNREAD_BUFFER_FACTOR = 4;

/** What ws reports when the socket went away without a close frame. */
const ABNORMAL_CLOSURE = 1006;

function asBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class PilotConnection implements FrameWriterHost {
  session: GatewaySession | undefined;
  /** Resolves once the host has heard `closed`: the handlers are done with this connection. */
  readonly disconnected: Promise<void>;
  /** Resolves when the socket itself is closed (the peer answered the close frame, or it was dropped). */
  readonly socketClosed: Promise<void>;

  private readonly bucket: TokenBucket;
  private readonly queue: PilotMessage[] = [];
  private readonly frames: FrameWriter;
  private readonly helloTimer: NodeJS.Timeout;
  private consecutiveBadFrames = 0;
  private consecutiveRateLimitedFrames = 0;
  private answeredLastPing = true;
  /** Messages handed to the host and not settled yet. */
  private inFlight = 0;
  /** A hello is being handled: nothing after it may start before the session exists. */
  private helloInFlight = false;
  private readingPaused = false;
  private closeReason: string | undefined;
  private notified = false;
  private resolveDisconnected!: () => void;

  constructor(
    private readonly socket: WebSocket,
    /** The protocol version the upgrade negotiated: every frame carries it, and it decides how acks go. */
    readonly version: ProtocolVersion,
    readonly principal: PilotPrincipal,
    readonly remoteAddress: string,
    private readonly host: ConnectionHost,
    endOfTurn: EndOfTurn,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {
    this.frames = new FrameWriter(
      socket,
      version,
      endOfTurn,
      limits.maxBufferedBytes * UNREAD_BUFFER_FACTOR,
      // Well inside the pilot's patience: it resends unacknowledged reports only after heartbeats.
      Math.min(limits.ackHoldMs, Math.floor(limits.heartbeatMs / 4)),
      this,
    );
    this.bucket = new TokenBucket(limits.ratePerSec, limits.burst);
    this.disconnected = new Promise((resolve) => {
      this.resolveDisconnected = resolve;
    });
    this.socketClosed = new Promise((resolve) => socket.once("close", () => resolve()));
    this.helloTimer = setTimeout(() => {
      if (!this.session) this.close(closeCodes.policyViolation, "no pilot.hello in time");
    }, limits.helloTimeoutMs);
    this.helloTimer.unref();

    socket.on("message", (data, isBinary) => this.receive(asBuffer(data), isBinary));
    socket.on("pong", () => {
      this.answeredLastPing = true;
    });
    // ws emits 'error' for protocol violations (an oversized frame: 1009, bad
    // opcodes: 1002) and closes the socket itself; without this listener the
    // error would be thrown and take the whole node down.
    socket.on("error", (err) => {
      this.log.warn({ ...this.logFields(), err: err.message }, "pilot socket error");
      this.finish(`socket error: ${err.message}`);
    });
    socket.on("close", (code, reason) => {
      if (code === ABNORMAL_CLOSURE) {
        this.finish("connection lost");
        return;
      }
      const why = reason.length > 0 ? `${code} ${reason.toString()}` : String(code);
      this.finish(`closed by the pilot (${why})`);
    });
  }

  /** Open until the gateway or the pilot starts closing it. */
  get open(): boolean {
    return this.closeReason === undefined && this.socket.readyState === WebSocket.OPEN;
  }

  logFields(): Record<string, unknown> {
    return this.session
      ? { pilotId: this.session.pilotId, site: this.principal.site, tokenId: this.principal.tokenId }
      : { remote: this.remoteAddress, site: this.principal.site, tokenId: this.principal.tokenId };
  }

  nextFrameId(): string {
    return this.frames.nextFrameId();
  }

  /**
   * Sends a frame regardless of backpressure: answers are small and owed (a
   * pilot that does not read even those is dropped). False once closing.
   */
  send(message: ServerMessage): boolean {
    return this.frames.send(message);
  }

  /** Acknowledges a frame the host finished handling: how, the protocol version decides. */
  acknowledge(ref: string): void {
    this.frames.acknowledge(ref);
  }

  /** For the frame writer: the pilot lets even the answers it is owed pile up. */
  notReading(unsentBytes: number): void {
    this.log.warn({ ...this.logFields(), bufferedBytes: unsentBytes }, "pilot does not read");
    this.terminate(closeCodes.policyViolation, "pilot does not read its socket");
  }

  /** Sends a frame unless the socket already holds `maxBufferedBytes` unsent. */
  sendIfNotBackpressured(message: ServerMessage): boolean {
    if (!this.open) return false;
    if (this.frames.unsentBytes() > this.limits.maxBufferedBytes) {
      this.log.debug(
        { ...this.logFields(), bufferedBytes: this.frames.unsentBytes() },
        "push refused: socket backpressured",
      );
      return false;
    }
    return this.send(message);
  }

  sendError(code: ProtocolErrorCode, message: string, ref?: string): void {
    this.send(errorFrame(this.version, this.nextFrameId(), code, message, ref));
  }

  /**
   * Starts the closing handshake; the handlers hear of it at once, whatever
   * the peer does. Acks owed for this turn go out before the close frame.
   */
  close(code: number, reason: string): void {
    if (this.closeReason !== undefined) return;
    this.log.debug({ ...this.logFields(), code, reason }, "closing pilot socket");
    this.frames.sendPendingAcks();
    this.socket.close(code, reason);
    this.finish(reason);
  }

  /**
   * Drops the socket without waiting for the peer (acks owed are dropped too:
   * the pilot resends). The close frame, after what this turn wrote, goes out
   * first so that a peer which is alive but deaf to pings still learns why.
   */
  terminate(code: number, reason: string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason);
    this.frames.abandonTurn();
    this.socket.terminate();
    this.finish(reason);
  }

  /**
   * Called every ping interval: terminates a socket that did not pong since the
   * previous call, else pings it. A socket we stopped reading (handlers are
   * slow) cannot have its pongs read, so it is not judged meanwhile.
   */
  checkLiveness(): void {
    if (this.socket.readyState !== WebSocket.OPEN || this.readingPaused) return;
    if (!this.answeredLastPing) {
      this.log.info(this.logFields(), "pilot missed a pong: terminating");
      this.terminate(closeCodes.heartbeatTimeout, "heartbeat timeout");
      return;
    }
    this.answeredLastPing = false;
    this.socket.ping();
  }

  private receive(bytes: Buffer, isBinary: boolean): void {
    if (this.closeReason !== undefined) return;
    if (!this.bucket.tryTake()) {
      this.refuseOverRate(frameIdOfBytes(bytes, isBinary));
      return;
    }
    this.consecutiveRateLimitedFrames = 0;
    const frame = decodePilotFrame(bytes, isBinary, this.version);
    if (!frame.ok) {
      this.refuseBadFrame(frame);
      return;
    }
    this.consecutiveBadFrames = 0;
    this.enqueue(frame.message);
  }

  private refuseOverRate(ref: string | undefined): void {
    this.consecutiveRateLimitedFrames += 1;
    if (this.consecutiveRateLimitedFrames > this.limits.maxConsecutiveRateLimitedFrames) {
      this.log.warn(this.logFields(), "pilot kept sending over its rate limit: closing");
      this.close(closeCodes.rateLimited, "rate limit exceeded");
      return;
    }
    this.sendError(
      "RATE_LIMITED",
      `over the limit of ${this.limits.ratePerSec} frames/s (burst ${this.limits.burst}): frame dropped, resend it later`,
      ref,
    );
  }

  private refuseBadFrame(frame: Extract<DecodedFrame, { ok: false }>): void {
    this.consecutiveBadFrames += 1;
    this.log.debug({ ...this.logFields(), code: frame.code, detail: frame.detail }, "bad pilot frame");
    this.sendError(frame.code, frame.detail, frame.ref);
    if (this.consecutiveBadFrames >= this.limits.maxConsecutiveBadFrames) {
      this.log.warn(this.logFields(), "too many bad frames in a row: closing");
      this.close(closeCodes.protocolError, "too many bad frames");
    }
  }

  private enqueue(message: PilotMessage): void {
    this.queue.push(message);
    // Stop reading rather than queue without bound while the handlers are slow.
    if (this.queue.length >= this.limits.maxQueuedMessages && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
    this.pump();
  }

  /**
   * Hands queued messages to the host, up to `maxConcurrentMessages` at once,
   * in arrival order. Until the session exists (a hello is in hand or none
   * was accepted yet) messages go one at a time.
   */
  private pump(): void {
    while (this.queue.length > 0 && this.closeReason === undefined) {
      if (this.helloInFlight || this.inFlight >= this.limits.maxConcurrentMessages) return;
      const serial = !this.session || this.queue[0]!.type === "pilot.hello";
      if (serial && this.inFlight > 0) return;
      const message = this.queue.shift()!;
      if (message.type === "pilot.hello") {
        clearTimeout(this.helloTimer);
        this.helloInFlight = true;
      }
      this.inFlight++;
      // One callback pair for all messages: a message's handling costs one promise here.
      this.host.handle(this, message).then(this.settled, this.handlingFailed);
      if (serial) return;
    }
  }

  /** The host is done with a message (it answered it). */
  private readonly settled = (): void => {
    this.inFlight--;
    // A hello is handled alone: while one is in flight, it is the message that settled.
    this.helloInFlight = false;
    if (this.readingPaused && this.queue.length < this.limits.maxQueuedMessages / 2) {
      this.readingPaused = false;
      this.socket.resume();
    }
    if (this.closeReason !== undefined) {
      if (this.inFlight === 0) this.notifyClosed();
      return;
    }
    this.pump();
  };

  private readonly handlingFailed = (err: unknown): void => {
    this.log.error({ ...this.logFields(), err }, "gateway failed to handle a frame");
    this.settled();
  };

  /** The connection is over for the handlers: drop what was not handled yet and tell the host. */
  private finish(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.queue.length = 0;
    clearTimeout(this.helloTimer);
    if (this.inFlight === 0) this.notifyClosed();
  }

  private notifyClosed(): void {
    if (this.notified) return;
    this.notified = true;
    try {
      this.host.closed(this, this.closeReason ?? "closed");
    } finally {
      this.resolveDisconnected();
    }
  }
}
