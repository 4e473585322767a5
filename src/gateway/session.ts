/** The session handed to the handlers: a pilot identity over one connection. */
import type { PilotConnection } from "./connection.js";
import { pushFrame, type ServerMessageInput } from "./frames.js";
import type { PilotHello, PilotPrincipal, PilotSession } from "./handlers.js";

export class GatewaySession implements PilotSession {
  private welcomed = false;

  constructor(
    readonly connection: PilotConnection,
    readonly pilotId: string,
    readonly hello: PilotHello,
    readonly connectedAtMs: number,
  ) {}

  get site(): string {
    return this.hello.site;
  }

  get principal(): PilotPrincipal {
    return this.connection.principal;
  }

  get open(): boolean {
    return this.connection.open;
  }

  /** Pushes become possible once `pilot.welcome` went out: a pilot must learn its id before its first job. */
  markWelcomed(): void {
    this.welcomed = true;
  }

  push(message: ServerMessageInput): boolean {
    const frame = pushFrame(message, this.connection.version, this.connection.nextFrameId());
    if (!this.welcomed) return false;
    return this.connection.sendIfNotBackpressured(frame);
  }

  close(code: number, reason: string): void {
    this.connection.close(code, reason);
  }
}
