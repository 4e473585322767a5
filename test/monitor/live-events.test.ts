import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { CommittedTransition } from "../../src/runtime/shard-host.js";
import { LiveEvents, type LiveEventsOptions } from "../../src/server/live-events.js";

type Listener = (transitions: CommittedTransition[]) => void;

function transition(actor: string, v: number, to: string): CommittedTransition {
  return {
    actor,
    entry: { v, at: 1000 + v, id: `e${v}`, event: { type: "go" }, from: "a", to, cause: "send" },
    state: null,
  };
}

/** A LiveEvents on a real HTTP server, fed by hand instead of by a runtime. */
async function setup(options: Partial<LiveEventsOptions>) {
  const listeners = new Set<Listener>();
  const live = new LiveEvents((listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, options);
  const server: Server = createServer((req, res) => {
    if (!live.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/events`;
  cleanups.push(async () => {
    live.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    live,
    url,
    emit: (ts: CommittedTransition[]) => {
      for (const l of listeners) l(ts);
    },
    listeners,
  };
}

/** Reads a stream's text as it arrives. */
async function connect(url: string) {
  const res = await fetch(url);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return {
    res,
    async until(needle: string, timeoutMs = 3000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`no ${needle} in ${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}: ${text}`);
        text += value;
      }
      return text;
    },
    cancel: () => reader.cancel(),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function changesIn(text: string): { id: string; version: number; transitions: number }[][] {
  return [...text.matchAll(/event: changes\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1]!));
}

describe("live events (SSE)", () => {
  it("coalesces a burst into one message with the latest transition of each actor", async () => {
    const { url, emit } = await setup({ coalesceMs: 50 });
    const stream = await connect(url);
    expect(stream.res.headers.get("content-type")).toContain("text/event-stream");
    await stream.until("event: hello");
    emit([transition("job/a", 1, "defined"), transition("job/b", 1, "defined")]);
    emit([transition("job/a", 2, "activated"), transition("job/a", 3, "running")]);
    const [batch, ...rest] = changesIn(await stream.until("event: changes"));
    expect(rest).toEqual([]);
    expect(batch).toEqual([
      expect.objectContaining({ id: "a", version: 3, transitions: 3, to: "running" }),
      expect.objectContaining({ id: "b", version: 1, transitions: 1 }),
    ]);
    await stream.cancel();
  });

  it("tells clients to resync instead of sending a burst larger than a flush may carry", async () => {
    const { url, emit } = await setup({ coalesceMs: 20, maxChangesPerFlush: 3 });
    const stream = await connect(url);
    await stream.until("event: hello");
    emit(Array.from({ length: 10 }, (_, i) => transition(`job/j${i}`, 1, "defined")));
    const text = await stream.until("event: resync");
    expect(changesIn(text)).toEqual([]);
    await stream.cancel();
  });

  it("stops writing to a client that does not read, then tells it to resync once it drains", async () => {
    const { live, url, emit } = await setup({ coalesceMs: 5, maxBufferedBytes: 64 * 1024 });
    // A raw request whose socket we pause: the server's writes pile up until it stops for this client.
    const paused = await new Promise<import("node:http").IncomingMessage>((resolve) =>
      request(url, resolve).end(),
    );
    paused.pause();
    // About 12 MB in all: more than loopback socket buffers absorb, so the server's own buffer fills.
    const big = "x".repeat(2000);
    for (let i = 0; i < 200; i++) {
      emit(Array.from({ length: 30 }, (_, j) => transition(`job/${big}${i}.${j}`, 1, "defined")));
      await new Promise((resolve) => setTimeout(resolve, 6));
    }
    expect(live.clientCount).toBe(1);
    let text = "";
    paused.setEncoding("utf8");
    paused.on("data", (chunk: string) => {
      text += chunk;
    });
    paused.resume();
    await expect.poll(() => text.includes("event: resync"), { timeout: 5000 }).toBe(true);
    // Far fewer than the 200 messages reached it: the rest were dropped, not buffered.
    expect(changesIn(text).length).toBeLessThan(200);
    paused.destroy();
  });

  it("sends heartbeat comments and ends every stream on close", async () => {
    const { live, url, listeners } = await setup({ heartbeatMs: 30 });
    const stream = await connect(url);
    await stream.until(": heartbeat");
    expect(live.clientCount).toBe(1);
    live.close();
    expect(listeners.size).toBe(0);
    await expect(stream.until("never comes")).rejects.toThrow(/stream ended/);
    expect(live.clientCount).toBe(0);
  });

  it("forgets a client that goes away", async () => {
    const { live, url } = await setup({});
    const stream = await connect(url);
    await stream.until("event: hello");
    await stream.cancel();
    await expect.poll(() => live.clientCount).toBe(0);
  });
});
