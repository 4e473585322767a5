/**
 * Events per minute over a sliding window, counted in ten buckets so memory
 * stays constant however many events arrive.
 */
export class EventRate {
  private readonly buckets: { startMs: number; count: number }[] = [];
  private readonly bucketMs: number;

  constructor(private readonly windowMs: number) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / 10));
  }

  note(nowMs: number): void {
    const startMs = nowMs - (nowMs % this.bucketMs);
    const last = this.buckets.at(-1);
    if (last?.startMs === startMs) last.count++;
    else this.buckets.push({ startMs, count: 1 });
    while ((this.buckets[0]?.startMs ?? nowMs) <= nowMs - this.windowMs) this.buckets.shift();
  }

  perMinute(nowMs: number): number {
    let count = 0;
    for (const bucket of this.buckets) if (bucket.startMs > nowMs - this.windowMs) count += bucket.count;
    return (count * 60_000) / this.windowMs;
  }
}
