/**
 * Server-Sent Events at `GET /api/v1/events`: every transition committed on
 * this node, and on every other node of the grid, coalesced per actor over a
 * short window so a burst of thousands of commits is one message per window,
 * not one per commit. Nodes relay their windows over the node bus, and only
 * while some node has a browser watching (each says so every few seconds).
 * A browser that cannot keep up is never buffered without bound: its
 * messages are dropped and it gets a `resync` event (reload from the API)
 * once its socket drains.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { LiveChange } from "../monitor/shapes.js";
import type { CommittedTransition } from "../runtime/shard-host.js";
import { HttpError, sendError } from "./http-util.js";
import type { NodeBus } from "./node-bus.js";

export interface LiveEventsOptions {
  /** Transitions heard within this window go out as one message. */
  coalesceMs: number;
  /** More changed actors than this in one window: clients are told to reload instead. */
  maxChangesPerFlush: number;
  /** A client whose socket holds more unsent bytes than this misses messages and is told to reload. */
  maxBufferedBytes: number;
  /** A comment line this often keeps proxies and idle-timeouts from closing quiet streams. */
  heartbeatMs: number;
}

/** Where a node's windows go to the other nodes, and theirs come from. */
export interface LiveRelay {
  bus: NodeBus;
  nodeId: string;
  /** True while this node owns every shard: there is nobody to relay to. */
  alone(): boolean;
}

/** How often a node with browsers watching says so; a node that heard nothing for three times this stops relaying. */
const WATCHING_NOTICE_MS = 5000;
const CHANGES_TOPIC = "live-changes";
const WATCHING_TOPIC = "live-watching";

export const DEFAULT_LIVE_EVENTS_OPTIONS: LiveEventsOptions = {
  coalesceMs: 250,
  maxChangesPerFlush: 2000,
  maxBufferedBytes: 256 * 1024,
  heartbeatMs: 15_000,
};

interface Client {
  res: ServerResponse;
  /** Set when a message was dropped for this client; cleared once it has been told to resync. */
  lagging: boolean;
}

const EVENTS_PATH = "/api/v1/events";

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function changeOf(t: CommittedTransition, folded: number): LiveChange {
  const slash = t.actor.indexOf("/");
  return {
    kind: t.actor.slice(0, slash),
    id: t.actor.slice(slash + 1),
    version: t.entry.v,
    atMs: t.entry.at,
    event: t.entry.event.type,
    from: t.entry.from,
    to: t.entry.to,
    refused: t.entry.refused !== undefined,
    transitions: folded,
  };
}

export class LiveEvents {
  private readonly clients = new Set<Client>();
  private readonly pending = new Map<string, { last: CommittedTransition; count: number }>();
  private overflowed = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly options: LiveEventsOptions;
  /** When another node last said a browser watches it; its windows are relayed until that is stale. */
  private othersWatchingUntilMs = Number.NEGATIVE_INFINITY;
  private readonly watchingNotice: NodeJS.Timeout | null = null;

  constructor(
    subscribe: (listener: (transitions: CommittedTransition[]) => void) => () => void,
    options: Partial<LiveEventsOptions> = {},
    /** As open as the API's reads: false answers 401 (a user token is needed). */
    private readonly mayRead: (req: IncomingMessage) => boolean = () => true,
    private readonly relay: LiveRelay | null = null,
  ) {
    this.options = { ...DEFAULT_LIVE_EVENTS_OPTIONS, ...options };
    this.unsubscribe = subscribe((transitions) => this.hear(transitions));
    this.heartbeat = setInterval(() => this.broadcast(": heartbeat\n\n"), this.options.heartbeatMs);
    this.heartbeat.unref();
    if (relay) {
      relay.bus.subscribe(CHANGES_TOPIC, (message) => this.heardFromNode(message));
      relay.bus.subscribe(WATCHING_TOPIC, (message) => {
        if (message !== relay.nodeId) this.othersWatchingUntilMs = Date.now() + 3 * WATCHING_NOTICE_MS;
      });
      this.watchingNotice = setInterval(() => this.sayWatching(), WATCHING_NOTICE_MS);
      this.watchingNotice.unref();
    }
  }

  /** True while a browser watches another node of the grid: this node's windows go to it. */
  get othersWatching(): boolean {
    return this.relay !== null && !this.relay.alone() && Date.now() < this.othersWatchingUntilMs;
  }

  private sayWatching(): void {
    if (this.relay && this.clients.size > 0 && !this.relay.alone())
      this.relay.bus.publish(WATCHING_TOPIC, this.relay.nodeId);
  }

  /** Another node's window, passed on to this node's browsers as it came. */
  private heardFromNode(message: string): void {
    if (this.clients.size === 0) return;
    const newline = message.indexOf("\n");
    if (newline < 0 || message.slice(0, newline) === this.relay?.nodeId) return;
    this.broadcast(message.slice(newline + 1));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Handles `GET /api/v1/events`; false for any other request. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== EVENTS_PATH) return false;
    if (!this.mayRead(req)) {
      sendError(res, new HttpError(401, "UNAUTHORIZED", "this server needs a user token to read"));
      return true;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Tell nginx-like proxies not to hold the stream back.
      "x-accel-buffering": "no",
    });
    // The browser waits this long before reconnecting after the stream drops.
    res.write(`retry: 2000\n${frame("hello", { coalesceMs: this.options.coalesceMs })}`);
    const client: Client = { res, lagging: false };
    this.clients.add(client);
    // The other nodes start relaying at once, not at the next notice.
    if (this.clients.size === 1) this.sayWatching();
    res.on("drain", () => {
      if (!client.lagging) return;
      client.lagging = false;
      res.write(frame("resync", { reason: "slow client" }));
    });
    const forget = () => this.clients.delete(client);
    req.on("close", forget);
    res.on("close", forget);
    return true;
  }

  /** Ends every stream and stops listening; the node is going away. */
  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeat);
    if (this.watchingNotice) clearInterval(this.watchingNotice);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }

  private hear(transitions: CommittedTransition[]): void {
    if (this.clients.size === 0 && !this.othersWatching) return;
    for (const t of transitions) {
      if (this.overflowed) break;
      const seen = this.pending.get(t.actor);
      if (seen) {
        seen.last = t;
        seen.count++;
      } else if (this.pending.size >= this.options.maxChangesPerFlush) {
        // Past this size a full reload is cheaper for the browser than applying every change.
        this.overflowed = true;
        this.pending.clear();
      } else {
        this.pending.set(t.actor, { last: t, count: 1 });
      }
    }
    this.flushTimer ??= setTimeout(() => this.flush(), this.options.coalesceMs);
  }

  private flush(): void {
    this.flushTimer = null;
    const message = this.overflowed
      ? frame("resync", { reason: "burst" })
      : frame(
          "changes",
          [...this.pending.values()].map(({ last, count }) => changeOf(last, count)),
        );
    this.pending.clear();
    this.overflowed = false;
    this.broadcast(message);
    // The frame as it is, behind this node's id: receivers pass it on without decoding it.
    if (this.othersWatching) this.relay!.bus.publish(CHANGES_TOPIC, `${this.relay!.nodeId}\n${message}`);
  }

  private broadcast(message: string): void {
    for (const client of this.clients) {
      if (client.lagging) continue;
      if (client.res.writableLength > this.options.maxBufferedBytes) {
        client.lagging = true;
        continue;
      }
      client.res.write(message);
    }
  }
}
