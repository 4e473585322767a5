import net from "node:net";

type WriteMethod = (this: net.Socket, ...args: unknown[]) => unknown;

/**
 * Counts the writes net sockets hand to the kernel (`_write` for one chunk,
 * `_writev` for the chunks a cork held back), for the sockets `which`
 * selects: frames coalesced by corking show as one write, frames sent one by
 * one as one each. Until `stop()`.
 */
export function countTcpWrites(which: (socket: net.Socket) => boolean): {
  readonly count: number;
  stop(): void;
} {
  const proto = net.Socket.prototype as unknown as Record<"_write" | "_writev", WriteMethod>;
  const originals = { _write: proto._write, _writev: proto._writev };
  const counter = {
    count: 0,
    stop: () => Object.assign(proto, originals),
  };
  for (const name of ["_write", "_writev"] as const) {
    const original = originals[name];
    proto[name] = function (this: net.Socket, ...args: unknown[]) {
      if (which(this)) counter.count += 1;
      return original.apply(this, args);
    };
  }
  return counter;
}
