/** How long to wait before reconnecting: exponential with jitter, capped. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5_000 };

/**
 * The delay before reconnect attempt `failures + 1`: doubling from
 * `initialMs` up to `maxMs`, then a random point in the upper half of that,
 * so that pilots cut off together do not all come back in the same instant.
 */
export function reconnectDelayMs(
  failures: number,
  policy: BackoffPolicy = RECONNECT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceilingMs = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, failures));
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}
