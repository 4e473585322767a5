/**
 * A token bucket: `burst` frames at once, then `ratePerSec` on average. The
 * server keeps one per session, so a noisy pilot slows down only itself; a
 * pilot keeps one to stay under the rate the server announced.
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
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** How long until a token is there to take (0: one is there now). */
  msUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerSec) * 1000);
  }

  private refill(): void {
    const now = this.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAtMs) / 1000) * this.ratePerSec);
    this.refilledAtMs = now;
  }
}
