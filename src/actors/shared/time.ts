/**
 * Machines have no clock: an event that knows the time carries `atMs`, and a
 * machine remembers the last time it heard so events without one (timers,
 * replays) still get a plausible timestamp.
 */
export function eventTimeMs(event: object, lastKnownMs: number | null): number | null {
  const atMs = (event as { atMs?: unknown }).atMs;
  return typeof atMs === "number" ? atMs : lastKnownMs;
}

interface Stamped<S extends string> {
  timestamps: Partial<Record<S, number>>;
  lastAtMs: number | null;
}

/** The context fields that record entering `state` at the event's time. */
export function stampState<S extends string>(context: Stamped<S>, event: object, state: S): Stamped<S> {
  const atMs = eventTimeMs(event, context.lastAtMs);
  return {
    lastAtMs: atMs,
    timestamps: atMs === null ? context.timestamps : { ...context.timestamps, [state]: atMs },
  };
}

/** `{ atMs }` when the time is known, nothing otherwise: messages carry no undefined fields. */
export function timeField(atMs: number | null): { atMs?: number } {
  return atMs === null ? {} : { atMs };
}
