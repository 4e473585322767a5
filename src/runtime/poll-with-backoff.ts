/**
 * Asking again until something another node does shows up: a probe now,
 * then after `firstMs`, twice as long each time up to `maxMs`, for at most
 * `waitMs` in all, on the runtime's clock (a simulation's virtual time
 * drives it like every other timer).
 */
import type { Clock } from "./clock.js";

export interface BackoffPoll {
  firstMs: number;
  maxMs: number;
  waitMs: number;
}

/** The probe's first answer that is not undefined; undefined once `waitMs` is spent without one. */
export async function pollWithBackoff<T>(
  clock: Clock,
  { firstMs, maxMs, waitMs }: BackoffPoll,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  let pollMs = firstMs;
  for (let waitedMs = 0; ; waitedMs += pollMs, pollMs = Math.min(2 * pollMs, maxMs)) {
    const answer = await probe();
    if (answer !== undefined) return answer;
    if (waitedMs >= waitMs) return undefined;
    await new Promise<void>((resolve) => clock.setTimer(resolve, pollMs));
  }
}
