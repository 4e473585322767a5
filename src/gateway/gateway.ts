/**
 * The server's WebSocket endpoint for pilots. It owns sockets, frames and
 * pilot identities (ids, resume tokens) and hands validated messages to the
 * injected handlers; it knows nothing about jobs.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import {
  closeCodes,
  newestOffered,
  type PilotMessage,
  PROTOCOL_SUBPROTOCOLS,
  subprotocolOf,
} from "../protocol/messages.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { PilotConnection } from "./connection.js";
import { EndOfTurn } from "./end-of-turn.js";
import {
  type GatewayHandlers,
  GatewayRefusal,
  type PilotHello,
  type PilotPrincipal,
  type PilotSession,
  type WelcomeJob,
} from "./handlers.js";
import { type GatewayLimits, type GatewayOptions, gatewayLimitsSchema } from "./options.js";
import { issueResumeToken, MIN_RESUME_SECRET_BYTES, newPilotId, verifyResumeToken } from "./resume-token.js";
import { GatewaySession } from "./session.js";
import { credentialOf, offeredSubprotocols, refuseUpgrade, requestPathname } from "./upgrade.js";

/** What `handle` answers for a message it dealt with at once. */
const HANDLED: Promise<void> = Promise.resolve();

function helloFailureCloseCode(err: unknown): number {
  if (!(err instanceof GatewayRefusal)) return closeCodes.internalError;
  return err.code === "UNAUTHORIZED" ? closeCodes.unauthorized : closeCodes.policyViolation;
}

export class PilotGateway {
  private readonly limits: GatewayLimits;
  private readonly handlers: GatewayHandlers;
  private readonly resumeSecret: Buffer;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<PilotConnection>();
  private readonly sessionsByPilot = new Map<string, GatewaySession>();
  private readonly sessionsByToken = new Map<string, Set<GatewaySession>>();
  private readonly pingTimer: NodeJS.Timeout;
  /** Where every socket's held-back writes of a turn are flushed, together. */
  private readonly endOfTurn: EndOfTurn;
  private closing: Promise<void> | undefined;

  constructor(options: GatewayOptions) {
    this.limits = gatewayLimitsSchema.parse(options);
    if (options.resumeSecret.length < MIN_RESUME_SECRET_BYTES) {
      throw new RangeError(`resumeSecret must be at least ${MIN_RESUME_SECRET_BYTES} bytes`);
    }
    this.handlers = options.handlers;
    this.resumeSecret = options.resumeSecret;
    this.log = options.log ?? silentLogger;
    this.nowMs = options.nowMs ?? Date.now;
    this.endOfTurn = new EndOfTurn((err) => this.log.error({ err }, "flushing a pilot socket failed"));
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.limits.maxPayloadBytes,
      // The newest version both sides speak; `upgrade` refused the request if there is none.
      handleProtocols: (offered) => {
        const version = newestOffered(offered);
        return version === undefined ? false : subprotocolOf(version);
      },
    });
    this.pingTimer = setInterval(() => {
      for (const connection of this.connections) connection.checkLiveness();
    }, this.limits.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Sessions whose hello was accepted and whose socket is not gone yet. */
  sessions(): PilotSession[] {
    return [...this.sessionsByPilot.values()];
  }

  session(pilotId: string): PilotSession | undefined {
    return this.sessionsByPilot.get(pilotId);
  }

  /**
   * Drops a pilot's socket without a close handshake, as a network failure
   * would; the pilot may come back with its resume token. For operators
   * clearing a wedged connection, and for failure tests.
   */
  terminate(pilotId: string, reason: string): boolean {
    const session = this.sessionsByPilot.get(pilotId);
    if (!session) return false;
    session.connection.terminate(closeCodes.policyViolation, reason);
    return true;
  }

  /** For `http.Server`'s `'upgrade'` event. Never throws: every failure is answered on the socket. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removes its own error listener from an upgraded socket; an error
    // while we await the authenticator would otherwise be thrown.
    const destroyOnError = () => socket.destroy();
    socket.on("error", destroyOnError);
    this.upgrade(request, socket, head, destroyOnError).catch((err: unknown) => {
      this.log.error({ remote: request.socket.remoteAddress, err }, "pilot upgrade failed");
      refuseUpgrade(socket, 500, "internal error\n");
    });
  }

  /** Stops accepting pilots and closes every session with 1001; resolves when their sockets are gone. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    clearInterval(this.pingTimer);
    const connections = [...this.connections];
    for (const connection of connections) connection.close(closeCodes.serverShutdown, "server shutting down");
    const socketsClosed = Promise.all(connections.map((connection) => connection.socketClosed));
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace over">((resolve) => {
      graceTimer = setTimeout(() => resolve("grace over"), this.limits.closeGraceMs);
    });
    if ((await Promise.race([socketsClosed, graceOver])) === "grace over") {
      for (const connection of connections) {
        connection.terminate(closeCodes.serverShutdown, "server shutting down");
      }
      await socketsClosed;
    }
    clearTimeout(graceTimer);
    // The handlers hear every disconnect before close() resolves.
    await Promise.all(connections.map((connection) => connection.disconnected));
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    destroyOnError: () => void,
  ): Promise<void> {
    const remote = request.socket.remoteAddress ?? "unknown";
    const refuse = (status: number, body: string, why: string, headers?: Record<string, string>) => {
      this.log.info({ remote, status, why }, "pilot upgrade refused");
      refuseUpgrade(socket, status, `${body}\n`, headers);
    };
    if (this.closing) return refuse(503, "server shutting down", "shutting down");
    if (requestPathname(request) !== this.limits.path) {
      return refuse(404, `not found: pilots connect to ${this.limits.path}`, "wrong path");
    }
    const version = newestOffered(offeredSubprotocols(request));
    if (version === undefined) {
      return refuse(
        400,
        `unsupported WebSocket subprotocol: this server speaks ${PROTOCOL_SUBPROTOCOLS.join(", ")}`,
        "unsupported subprotocol",
      );
    }
    const token = credentialOf(request);
    const unauthorized = { "WWW-Authenticate": 'Bearer realm="panda-pilot"' };
    if (!token) return refuse(401, "a pilot credential is required", "no credential", unauthorized);
    const principal = await this.handlers.authenticate(token, request);
    if (socket.destroyed) return;
    if (!principal) return refuse(401, "credential refused", "credential refused", unauthorized);
    if (this.closing) return refuse(503, "server shutting down", "shutting down");

    socket.off("error", destroyOnError);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new PilotConnection(
        ws,
        version,
        principal,
        remote,
        { handle: (c, m) => this.handle(c, m), closed: (c, reason) => this.closed(c, reason) },
        this.endOfTurn,
        this.limits,
        this.log,
      );
      this.connections.add(connection);
      this.log.debug(connection.logFields(), "pilot socket open");
    });
  }

  /** Answers a message: an ack once the handler resolved (see `acknowledge`), else an error frame. */
  private handle(connection: PilotConnection, message: PilotMessage): Promise<void> {
    const session = connection.session;
    if (!session) {
      if (message.type === "pilot.hello") return this.acceptHello(connection, message);
      connection.sendError("NOT_READY", "the first message must be pilot.hello", message.id);
      connection.close(closeCodes.policyViolation, "first message must be pilot.hello");
      return HANDLED;
    }
    if (message.type === "pilot.hello") {
      connection.sendError("MALFORMED", "pilot.hello was already accepted on this socket", message.id);
      return HANDLED;
    }
    let handled: Promise<void>;
    try {
      handled = this.handlers.onMessage(session, message);
    } catch (err) {
      handled = Promise.reject(err);
    }
    return handled.then(
      () => connection.acknowledge(message.id),
      (err: unknown) => this.answerHandlerError(connection, err, message),
    );
  }

  private async acceptHello(connection: PilotConnection, hello: PilotHello): Promise<void> {
    const { principal } = connection;
    if (hello.site !== principal.site) {
      return this.refuseHello(
        connection,
        hello,
        `this credential serves site ${principal.site}`,
        "site mismatch",
      );
    }
    const resumed = hello.resume !== undefined;
    if (
      hello.resume &&
      !verifyResumeToken(this.resumeSecret, principal.site, hello.resume.pilotId, hello.resume.token)
    ) {
      return this.refuseHello(connection, hello, "invalid resume token", "invalid resume token");
    }
    const pilotId = hello.resume?.pilotId ?? this.unusedPilotId();
    const replaced = this.sessionsByPilot.get(pilotId);
    if (this.sessionCount(principal, replaced) >= this.limits.maxSessionsPerToken) {
      this.log.warn({ ...connection.logFields(), max: this.limits.maxSessionsPerToken }, "too many sessions");
      connection.close(closeCodes.policyViolation, "too many sessions for this credential");
      return;
    }

    const session = new GatewaySession(connection, pilotId, hello, this.nowMs());
    connection.session = session;
    this.register(session);
    if (replaced) {
      // The old socket may be half-open; the pilot is the one on the new socket.
      replaced.connection.close(closeCodes.replaced, "replaced by a resumed session");
      // So that the handlers hear the old session end before the new one starts.
      await replaced.connection.disconnected;
    }

    let jobs: WelcomeJob[];
    try {
      jobs = await this.handlers.onHello(session, hello, resumed);
    } catch (err) {
      this.answerHandlerError(connection, err, hello);
      connection.close(helloFailureCloseCode(err), "hello refused");
      return;
    }
    if (!connection.open) return;
    connection.send({
      type: "pilot.welcome",
      v: connection.version,
      id: connection.nextFrameId(),
      ref: hello.id,
      pilotId,
      resumeToken: issueResumeToken(this.resumeSecret, principal.site, pilotId),
      heartbeatMs: this.limits.heartbeatMs,
      frameRate: { perSec: this.limits.ratePerSec, burst: this.limits.burst },
      jobs,
    });
    session.markWelcomed();
    this.log.info(
      { ...connection.logFields(), resumed, agent: hello.agent, hostname: hello.hostname, jobs: jobs.length },
      "pilot connected",
    );
  }

  private refuseHello(connection: PilotConnection, hello: PilotHello, message: string, reason: string): void {
    this.log.warn({ ...connection.logFields(), helloSite: hello.site, reason }, "pilot hello refused");
    connection.sendError("UNAUTHORIZED", message, hello.id);
    connection.close(closeCodes.unauthorized, reason);
  }

  /** A refusal is the handler's answer; anything else is our failure, logged, and the pilot may resend. */
  private answerHandlerError(connection: PilotConnection, err: unknown, message: PilotMessage): void {
    if (err instanceof GatewayRefusal) {
      connection.sendError(err.code, err.message, message.id);
      return;
    }
    this.log.error(
      { ...connection.logFields(), messageType: message.type, ref: message.id, err },
      "pilot message handler failed",
    );
    connection.sendError("INTERNAL", "the server failed to handle this message: resend it later", message.id);
  }

  private closed(connection: PilotConnection, reason: string): void {
    this.connections.delete(connection);
    const session = connection.session;
    if (!session) {
      this.log.debug({ ...connection.logFields(), reason }, "pilot socket closed before its hello");
      return;
    }
    this.unregister(session);
    this.log.info({ ...connection.logFields(), reason }, "pilot disconnected");
    try {
      const result: unknown = this.handlers.onDisconnect(session, reason);
      if (result instanceof Promise) {
        result.catch((err: unknown) =>
          this.log.error({ pilotId: session.pilotId, err }, "onDisconnect failed"),
        );
      }
    } catch (err) {
      this.log.error({ pilotId: session.pilotId, err }, "onDisconnect failed");
    }
  }

  private unusedPilotId(): string {
    let pilotId = newPilotId();
    while (this.sessionsByPilot.has(pilotId)) pilotId = newPilotId();
    return pilotId;
  }

  /** Live sessions of this credential, not counting the one a resume is about to replace. */
  private sessionCount(principal: PilotPrincipal, replaced: GatewaySession | undefined): number {
    const sessions = this.sessionsByToken.get(principal.tokenId);
    if (!sessions) return 0;
    return sessions.size - (replaced && sessions.has(replaced) ? 1 : 0);
  }

  private register(session: GatewaySession): void {
    this.sessionsByPilot.set(session.pilotId, session);
    const tokenId = session.principal.tokenId;
    const sessions = this.sessionsByToken.get(tokenId) ?? new Set();
    sessions.add(session);
    this.sessionsByToken.set(tokenId, sessions);
  }

  private unregister(session: GatewaySession): void {
    if (this.sessionsByPilot.get(session.pilotId) === session) this.sessionsByPilot.delete(session.pilotId);
    const tokenId = session.principal.tokenId;
    const sessions = this.sessionsByToken.get(tokenId);
    sessions?.delete(session);
    if (sessions?.size === 0) this.sessionsByToken.delete(tokenId);
  }
}
