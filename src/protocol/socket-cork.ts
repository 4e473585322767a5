/** Reaching the TCP socket under a ws WebSocket so that several frames go out in one write. */
import type WebSocket from "ws";

/** What corking needs of a socket: `net.Socket`'s cork and uncork. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * The TCP socket under a ws WebSocket. ws keeps it private, and corking it is
 * the only way to coalesce several frames into one write: ws writes each
 * frame (header and payload) on its own.
 */
export function tcpSocketOf(socket: WebSocket): Corkable | undefined {
  return (socket as unknown as { _socket?: Corkable })._socket ?? undefined;
}
