/**
 * The HTTP upgrade to a pilot WebSocket: its path, credential and offered
 * subprotocols read from the request, and refusals answered before any socket exists.
 */
import { type IncomingMessage, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/** The path of the request without its query (which may carry a token and must never be logged). */
export function requestPathname(request: IncomingMessage): string {
  try {
    return new URL(request.url ?? "/", "http://gateway.invalid").pathname;
  } catch {
    return "";
  }
}

/** `Authorization: Bearer <token>`, else `?token=` for clients that cannot set headers. */
export function credentialOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  const bearer = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  if (bearer) return bearer;
  try {
    return new URL(request.url ?? "/", "http://gateway.invalid").searchParams.get("token") || undefined;
  } catch {
    return undefined;
  }
}

/** The subprotocols the client offered in `Sec-WebSocket-Protocol`, in its order of preference. */
export function offeredSubprotocols(request: IncomingMessage): string[] {
  const header = request.headers["sec-websocket-protocol"];
  if (header === undefined) return [];
  return header
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}

/**
 * Answers an upgrade request with a plain HTTP error and drops the socket. The
 * WebSocket handshake has not happened, so this is the only way to say why.
 */
export function refuseUpgrade(
  socket: Duplex,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const allHeaders: Record<string, string | number> = {
    Connection: "close",
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    ...headers,
  };
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`]
    .concat(Object.entries(allHeaders).map(([name, value]) => `${name}: ${value}`))
    .join("\r\n");
  socket.once("finish", () => socket.destroy());
  socket.end(`${head}\r\n\r\n${body}`);
}
