/**
 * A pilot socket's outgoing side. Frames written in one event-loop turn are
 * held (the socket corked) and go out in one write at its end, through the
 * gateway's `EndOfTurn`. On protocol version 2 acks wait: the frames
 * acknowledged since the last write are listed in one `ack` that goes out
 * with the next frame written to the socket, or on its own once the oldest
 * has waited `ackHoldMs`. A pilot's reports, its `pilot.ready` and the push
 * that answers it then cost one write (a system call that wakes the pilot),
 * not three. It also numbers the server's frames and says what the socket
 * holds unsent.
 */
import { randomBytes } from "node:crypto";
import type WebSocket from "ws";
import { MAX_REFS_PER_ACK, type ProtocolVersion, type ServerMessage } from "../protocol/messages.js";
import { tcpSocketOf } from "../protocol/socket-cork.js";
import type { EndOfTurn } from "./end-of-turn.js";
import { encodeServerFrame } from "./frames.js";

/** Corked frame bytes after which the socket is flushed within the turn. */
const MAX_CORKED_BYTES = 16 * 1024;

/** What a writer needs of the connection it writes for. */
export interface FrameWriterHost {
  /** False once the connection is closing: nothing more goes out. */
  readonly open: boolean;
  /** The pilot lets even the answers it is owed pile up: it is not reading its socket. */
  notReading(unsentBytes: number): void;
}

export class FrameWriter {
  private readonly framePrefix = randomBytes(4).toString("hex");
  private frameCount = 0;
  /** This turn's frames are held until its end. */
  private turnHeld = false;
  /** The socket was corked for this turn. */
  private corked = false;
  /** Frame bytes written while corked this turn: held back by us, not by a pilot that does not read. */
  private corkedBytes = 0;
  /** Version 2: ids of the frames acknowledged and not yet answered. */
  private pendingAcks: string[] = [];
  /** Sends the pending acks on their own when no other frame came to carry them. */
  private ackTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: WebSocket,
    /** The version the upgrade negotiated: it decides how acks go. */
    readonly version: ProtocolVersion,
    private readonly endOfTurn: EndOfTurn,
    /** Unsent bytes past which a pilot counts as not reading. */
    private readonly maxUnreadBytes: number,
    /** Version 2: how long an ack may wait for a frame to go out with. */
    private readonly ackHoldMs: number,
    private readonly host: FrameWriterHost,
  ) {}

  nextFrameId(): string {
    this.frameCount += 1;
    return `${this.framePrefix}-${this.frameCount}`;
  }

  /** Bytes the socket could not hand to the kernel yet, less this turn's corked frames. */
  unsentBytes(): number {
    return Math.max(0, this.socket.bufferedAmount - this.corkedBytes);
  }

  /**
   * Writes a frame regardless of backpressure: answers are small and owed. A
   * pilot that lets even those pile up is not reading its socket at all: the
   * host hears of it (and drops it) rather than buffering without bound.
   * False when the frame did not go out.
   */
  send(message: ServerMessage): boolean {
    if (!this.host.open) return false;
    if (this.unsentBytes() > this.maxUnreadBytes) {
      this.host.notReading(this.unsentBytes());
      return false;
    }
    const frame = encodeServerFrame(message);
    this.holdTurn();
    this.socket.send(frame);
    if (this.corked) {
      this.corkedBytes += frame.length;
      // Corking is for coalescing small frames; big ones go out at once, so backpressure shows as it happens.
      if (this.corkedBytes >= MAX_CORKED_BYTES) this.flushCorked();
    }
    return true;
  }

  /**
   * Acknowledges a frame the host finished handling. Version 1: an `ack` of
   * its own, at once. Version 2: one `ack` lists every frame handled since
   * the last one went out; it goes with the next frame written (at the end
   * of that turn) or after `ackHoldMs`, whichever comes first.
   */
  acknowledge(ref: string): void {
    if (this.version === 1) {
      this.send({ type: "ack", v: 1, id: this.nextFrameId(), ref });
      return;
    }
    if (!this.host.open) return;
    this.pendingAcks.push(ref);
    if (this.pendingAcks.length >= MAX_REFS_PER_ACK) this.sendPendingAcks();
    else if (this.turnHeld || this.ackHoldMs === 0) this.holdTurn();
    else this.ackTimer ??= setTimeout(this.ackHoldOver, this.ackHoldMs);
  }

  /** Writes the acks owed now (before the turn ends when the socket is about to close). */
  sendPendingAcks(): void {
    this.clearAckTimer();
    if (this.pendingAcks.length === 0) return;
    const refs = this.pendingAcks;
    this.pendingAcks = [];
    this.send({ type: "ack", v: 2, id: this.nextFrameId(), refs });
  }

  /** The socket is being dropped: the acks owed are dropped (the pilot resends), what is held goes out. */
  abandonTurn(): void {
    this.clearAckTimer();
    this.pendingAcks = [];
    this.releaseTurn();
  }

  /** No frame came to carry the acks in time: they go on their own, at the end of this turn. */
  private readonly ackHoldOver = (): void => {
    this.ackTimer = null;
    if (this.pendingAcks.length > 0 && this.host.open) this.holdTurn();
  };

  private clearAckTimer(): void {
    if (this.ackTimer === null) return;
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  private flushCorked(): void {
    const tcp = tcpSocketOf(this.socket);
    if (!tcp) return;
    tcp.uncork();
    tcp.cork();
    this.corkedBytes = 0;
  }

  /**
   * Holds this turn's frames in the socket and writes them at once at the end
   * of the turn: the answers to a pilot's reports and a push that follows
   * them cost one write, not one each.
   */
  private holdTurn(): void {
    if (this.turnHeld) return;
    this.turnHeld = true;
    const tcp = tcpSocketOf(this.socket);
    if (tcp) {
      tcp.cork();
      this.corked = true;
    }
    this.endOfTurn.defer(this.endTurn);
  }

  /** The turn is over: the acks owed go out (version 2) with everything it wrote, in one write. */
  private readonly endTurn = (): void => {
    if (!this.turnHeld) return;
    this.sendPendingAcks();
    this.releaseTurn();
  };

  private releaseTurn(): void {
    this.turnHeld = false;
    this.corkedBytes = 0;
    if (this.corked) {
      this.corked = false;
      tcpSocketOf(this.socket)?.uncork();
    }
  }
}
