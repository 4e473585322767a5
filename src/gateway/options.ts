/** The gateway's limits and timings, with defaults fit for a production node. */
import { z } from "zod";
import type { Logger } from "../runtime/logger.js";
import type { GatewayHandlers } from "./handlers.js";

const positiveInt = z.number().int().positive();

/** The gateway's limits and timings; every one has a default fit for a production node. */
export const gatewayLimitsSchema = z.object({
  /** The URL path pilots connect to; any other path is answered 404. */
  path: z.string().startsWith("/").default("/pilot"),
  /** Largest frame accepted; a larger one closes the socket with 1009. */
  maxPayloadBytes: positiveInt.default(1024 * 1024),
  /** Told to pilots in `pilot.welcome`: how often to send `job.heartbeat` per running job. */
  heartbeatMs: positiveInt.default(30_000),
  /** A WebSocket ping this often; a socket that did not pong since the last one is terminated. */
  pingIntervalMs: positiveInt.default(15_000),
  /** `push()` refuses while the socket holds more than this many unsent bytes. */
  maxBufferedBytes: positiveInt.default(1024 * 1024),
  /** Sustained frame rate per session (token bucket refill). */
  ratePerSec: z.number().positive().default(20),
  /** Frames a session may send at once before the rate applies. */
  burst: positiveInt.default(100),
  /** Consecutive rate-limited frames after which the session is closed with 4003. */
  maxConsecutiveRateLimitedFrames: positiveInt.default(50),
  /** Consecutive undecodable or invalid frames after which the session is closed with 1002. */
  maxConsecutiveBadFrames: positiveInt.default(10),
  /** Sessions one credential (`tokenId`) may hold on this node at once. */
  maxSessionsPerToken: positiveInt.default(1000),
  /** A socket that has not sent `pilot.hello` by then is closed with 1008. */
  helloTimeoutMs: positiveInt.default(10_000),
  /** Messages waiting for the handlers before the gateway stops reading the socket (TCP backpressure). */
  maxQueuedMessages: positiveInt.default(32),
  /**
   * Messages of one session handed to the handlers at once. Reports that
   * arrive together (starting, running, ended) then reach their job in one
   * turn and share one commit, and (protocol version 2) one ack.
   */
  maxConcurrentMessages: positiveInt.default(16),
  /**
   * Version 2: how long an ack may wait for another frame to the same pilot
   * (the next push, usually) to go out with it: each write to a socket is a
   * system call that wakes the pilot, and acks need no hurry (a pilot resends
   * a report only after heartbeats without its ack). At most a quarter of
   * `heartbeatMs` is used. 0 sends every turn's acks at the end of that turn.
   */
  ackHoldMs: z.number().int().nonnegative().default(250),
  /** How long `close()` waits for pilots to answer the close frame before dropping their sockets. */
  closeGraceMs: positiveInt.default(2_000),
});

export type GatewayLimits = z.output<typeof gatewayLimitsSchema>;

export interface GatewayOptions extends Partial<GatewayLimits> {
  handlers: GatewayHandlers;
  /** Key of the resume-token MAC: the same on every node, so a pilot may resume on any of them. */
  resumeSecret: Buffer;
  log?: Logger;
  /** Wall clock for `connectedAtMs`. */
  nowMs?: () => number;
}
