/**
 * A level that changes at instants (busy slots, pilots holding slots) and
 * its area over time, for utilisation: the mean level over a window is the
 * area's growth divided by the window's length.
 */
export class TimeIntegral {
  private levelValue = 0;
  private lastMs: number;
  private areaValue = 0;

  constructor(startMs: number) {
    this.lastMs = startMs;
  }

  get level(): number {
    return this.levelValue;
  }

  add(delta: number, nowMs: number): void {
    this.settle(nowMs);
    this.levelValue += delta;
  }

  /** Level x milliseconds up to `nowMs`. */
  area(nowMs: number): number {
    this.settle(nowMs);
    return this.areaValue;
  }

  private settle(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.areaValue += this.levelValue * (nowMs - this.lastMs);
      this.lastMs = nowMs;
    }
  }
}

/** One physical site's batch slots: how many hold a pilot, and how many run a payload. */
export class SlotMeter {
  readonly occupied: TimeIntegral;
  readonly busy: TimeIntegral;

  constructor(
    readonly site: string,
    readonly slots: number,
    startMs: number,
  ) {
    this.occupied = new TimeIntegral(startMs);
    this.busy = new TimeIntegral(startMs);
  }
}
