/** The browser app's live connection: changes pushed by the server, resyncs, reconnection. */
import { type ErrorEvent, EventSource } from "eventsource";
import type { LiveChange } from "../shapes.js";
import { withToken } from "./auth.js";

export type { LiveChange };

export type LiveMessage = { type: "changes"; changes: LiveChange[] } | { type: "resync" };
type Listener = (message: LiveMessage) => void;

export type LiveStatus = "live" | "reconnecting" | "signed out";

/**
 * One event stream for the whole app: views subscribe while they are shown.
 * The `eventsource` package rather than the browser's EventSource, because
 * only it can send the bearer header (the browser's sends no headers of the
 * page's choosing). It reconnects by itself; after a reconnect anything may
 * have been missed, so views hear a `resync` and reload from the API. A 401
 * ends the stream (it is not retried): `restart()` after the user signs in.
 */
export class LiveFeed {
  private readonly listeners = new Set<Listener>();
  private source: EventSource | null = null;
  private everOpen = false;

  constructor(
    private readonly url: string,
    private readonly onStatus: (status: LiveStatus) => void,
    private readonly onUnauthorized: (message: string) => void,
  ) {}

  start(): void {
    const source = new EventSource(this.url, {
      // The token is read at every (re)connect: one pasted meanwhile is used from then on.
      fetch: (input, init) => fetch(input, { ...init, headers: withToken(init.headers) }),
    });
    this.source = source;
    source.addEventListener("open", () => {
      this.onStatus("live");
      if (this.everOpen) this.emit({ type: "resync" });
      this.everOpen = true;
    });
    source.addEventListener("error", (event) => {
      if ((event as ErrorEvent).code === 401) {
        this.onStatus("signed out");
        this.onUnauthorized((event as ErrorEvent).message ?? "this server needs a user token to read");
      } else {
        this.onStatus("reconnecting");
      }
    });
    source.addEventListener("changes", (e) => {
      this.emit({ type: "changes", changes: JSON.parse((e as MessageEvent<string>).data) as LiveChange[] });
    });
    source.addEventListener("resync", () => this.emit({ type: "resync" }));
  }

  /** A new stream (with the token stored now); views reload, since anything may have been missed. */
  restart(): void {
    this.close();
    this.start();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }

  private emit(message: LiveMessage): void {
    for (const listener of this.listeners) listener(message);
  }
}

/**
 * Runs a refresh nobody awaits. A failed one (the node restarting, a dropped
 * connection) leaves the view as it was: the next push or tick tries again.
 */
export function inBackground(run: () => Promise<unknown> | unknown): void {
  Promise.resolve()
    .then(run)
    .catch((err: unknown) => console.warn("monitor refresh failed:", err));
}

/** Calls `run` at most once per `ms`, trailing: bursts of pushes become one reload. */
export function throttled(run: () => Promise<unknown> | unknown, ms: number): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      inBackground(run);
    }, ms);
  };
}
