/**
 * A token bucket: `burst` frames at once, then `ratePerSec` on average. One
 * per session, so a noisy pilot slows down only itself.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAtMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    if (!(ratePerSec > 0) || !(burst >= 1)) {
      throw new RangeError(
        `a token bucket needs ratePerSec > 0 and burst >= 1 (got ${ratePerSec}, ${burst})`,
      );
    }
    this.tokens = burst;
    this.refilledAtMs = nowMs();
  }

  /** Takes one token if there is one; false means the frame is over the limit. */
  tryTake(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAtMs) / 1000) * this.ratePerSec);
    this.refilledAtMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
