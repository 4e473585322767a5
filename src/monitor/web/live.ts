import type { LiveChange } from "../shapes.js";

export type { LiveChange };

export type LiveMessage = { type: "changes"; changes: LiveChange[] } | { type: "resync" };
type Listener = (message: LiveMessage) => void;

/**
 * One EventSource for the whole app: views subscribe while they are shown.
 * The browser reconnects by itself; after a reconnect anything may have been
 * missed, so views hear a `resync` and reload from the API.
 */
export class LiveFeed {
  private readonly listeners = new Set<Listener>();
  private source: EventSource | null = null;
  private everOpen = false;

  constructor(
    private readonly url: string,
    private readonly onStatus: (status: "live" | "reconnecting") => void,
  ) {}

  start(): void {
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("open", () => {
      this.onStatus("live");
      if (this.everOpen) this.emit({ type: "resync" });
      this.everOpen = true;
    });
    source.addEventListener("error", () => this.onStatus("reconnecting"));
    source.addEventListener("changes", (e) => {
      this.emit({ type: "changes", changes: JSON.parse((e as MessageEvent<string>).data) as LiveChange[] });
    });
    source.addEventListener("resync", () => this.emit({ type: "resync" }));
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.source?.close();
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
