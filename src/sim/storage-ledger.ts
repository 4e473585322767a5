/**
 * Bytes held at each physical site's storage element. The simulation moves
 * no bytes, but capacity is modelled: a dispatch transfer that does not fit
 * fails, and a job's dispatch copies are cleaned up when the job ends, as
 * PanDA deletes dispatch datasets.
 */
export class StorageLedger {
  private readonly usedBytes = new Map<string, number>();
  private readonly peakBytes = new Map<string, number>();
  /** Bytes a job's dispatch copies hold, by job id, so they can be freed when it ends. */
  private readonly dispatchBytes = new Map<string, { site: string; bytes: number }>();

  constructor(private readonly capacityBytes: ReadonlyMap<string, number>) {}

  fits(site: string, bytes: number): boolean {
    return (
      (this.usedBytes.get(site) ?? 0) + bytes <= (this.capacityBytes.get(site) ?? Number.POSITIVE_INFINITY)
    );
  }

  add(site: string, bytes: number): void {
    const used = (this.usedBytes.get(site) ?? 0) + bytes;
    this.usedBytes.set(site, used);
    if (used > (this.peakBytes.get(site) ?? 0)) this.peakBytes.set(site, used);
  }

  /** A file of a job's dispatch arrived: held until the job ends. */
  addDispatch(jobId: string, site: string, bytes: number): void {
    this.add(site, bytes);
    const held = this.dispatchBytes.get(jobId);
    if (held) held.bytes += bytes;
    else this.dispatchBytes.set(jobId, { site, bytes });
  }

  releaseDispatch(jobId: string): void {
    const held = this.dispatchBytes.get(jobId);
    if (!held) return;
    this.dispatchBytes.delete(jobId);
    this.usedBytes.set(held.site, (this.usedBytes.get(held.site) ?? 0) - held.bytes);
  }

  used(site: string): number {
    return this.usedBytes.get(site) ?? 0;
  }

  peak(site: string): number {
    return this.peakBytes.get(site) ?? 0;
  }
}
