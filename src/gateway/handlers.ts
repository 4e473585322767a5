/**
 * The contract between the gateway and what serves pilots: the hello, reports
 * and sessions it hands over, and the refusal a handler answers with. The
 * gateway knows nothing about jobs; the dispatcher implements these.
 */
import type { IncomingMessage } from "node:http";
import type { z } from "zod";
import type { PilotMessage, ProtocolErrorCode, pilotHelloSchema, Thread } from "../protocol/messages.js";
import type { ServerMessageInput } from "./frames.js";

/** What a credential proves: the site it may serve and an id for limits and logs (never the secret). */
export interface PilotPrincipal {
  site: string;
  tokenId: string;
}

export type PilotHello = z.output<typeof pilotHelloSchema>;

/** Every pilot message but the hello, which the gateway answers itself. */
export type PilotReport = Exclude<PilotMessage, { type: "pilot.hello" }>;

/** A job the server believes a pilot runs, for `pilot.welcome.jobs`. */
export interface WelcomeJob {
  jobId: string;
  attempt: number;
  thread: Thread;
}

/** One pilot's session, from its accepted `pilot.hello` until its socket is gone. */
export interface PilotSession {
  readonly pilotId: string;
  readonly site: string;
  readonly principal: PilotPrincipal;
  readonly hello: PilotHello;
  readonly connectedAtMs: number;
  /** False once the socket is closing or closed; a resumed pilot comes back as a new session object. */
  readonly open: boolean;
  /**
   * Sends a frame now. Returns false, without queueing, when the session is not
   * welcomed yet, is closed, or the socket holds more than `maxBufferedBytes`
   * unsent: the caller keeps the work and tries again (or another pilot).
   * Throws on a `job.kill` or `pilot.drain` that does not match the wire
   * contract; a `job.push`, the hot path, is sent as its type says.
   */
  push(message: ServerMessageInput): boolean;
  close(code: number, reason: string): void;
}

/**
 * The dispatch layer behind the gateway. The gateway calls them one message at
 * a time per session, in arrival order: `onHello`, then `onMessage` for each
 * later message, then exactly one `onDisconnect` after the last call settled.
 */
export interface GatewayHandlers {
  /** Token from `Authorization: Bearer` (or `?token=`). Resolve null to refuse the upgrade with 401. */
  authenticate(token: string, request: IncomingMessage): Promise<PilotPrincipal | null>;
  /** A pilot said hello (new or resumed); resolve to the jobs the server believes it runs. */
  onHello(session: PilotSession, hello: PilotHello, resumed: boolean): Promise<WelcomeJob[]>;
  /**
   * Any later message. Resolve to acknowledge it (the gateway sends the ack: one
   * per message on protocol version 1, one for a turn's messages on version 2);
   * throw a `GatewayRefusal` to answer with an error frame of that code instead.
   */
  onMessage(session: PilotSession, message: PilotReport): Promise<void>;
  /** The socket is gone (closed, silent, replaced by a resume). The pilot may come back with its resume token. */
  onDisconnect(session: PilotSession, reason: string): void;
}

/** Thrown by a handler to answer a message with an error frame of `code` rather than an ack. */
export class GatewayRefusal extends Error {
  override readonly name = "GatewayRefusal";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}
