/**
 * Moves files for subscriptions on the virtual clock: per-file latency, then
 * the link's shared bandwidth, then `file.done` (or `file.failed` with the
 * destination's stage-in failure probability, or when its storage is full)
 * through the same transfer events as the real agent. Queues of one physical
 * site share its storage, so a transfer between them is done at once.
 */
import type { FileMover, TransferEvents, TransferRequest } from "../transfer/transfer-agent.js";
import type { QueuedEvent } from "./event-queue.js";
import type { RandomStream } from "./random.js";
import type { StorageLedger } from "./storage-ledger.js";
import type { PhysicalSite, Topology } from "./topology.js";
import type { VirtualClock } from "./virtual-clock.js";

/** A file on its way: bytes left, and what to say when it lands. */
interface Flight {
  subscriptionId: string;
  jobId: string | null;
  lfn: string;
  sizeBytes: number;
  remainingBytes: number;
  destination: string;
  fails: boolean;
  link: Link | null;
  cancelled: boolean;
}

interface ActiveSubscription {
  remaining: number;
  failed: string[];
  flights: Flight[];
}

export interface TransferTotals {
  files: number;
  failedFiles: number;
  bytes: number;
  /** Bytes moved per link, "SRC>DST". */
  bytesByLink: Map<string, number>;
}

/** Sub-byte leftovers of floating-point sharing count as done. */
const DONE_EPSILON_BYTES = 1;

/**
 * One direction between two physical sites. Files in flight share its
 * bandwidth equally (processor sharing), at most `streams` at a time; the
 * rest wait in arrival order. A slowdown changes the bandwidth of files
 * already in flight too.
 */
class Link {
  readonly active: Flight[] = [];
  private readonly waiting: Flight[] = [];
  private waitingHead = 0;
  private lastMs: number;
  private next: QueuedEvent | null = null;
  factor = 1;

  constructor(
    readonly key: string,
    private readonly bandwidthBytesPerSec: number,
    readonly latencyMs: number,
    private readonly streams: number,
    private readonly clock: VirtualClock,
    private readonly landed: (flight: Flight) => void,
  ) {
    this.lastMs = clock.nowMs();
  }

  private bytesPerMs(): number {
    return (this.bandwidthBytesPerSec * this.factor) / 1000;
  }

  /** Brings every active file's remaining bytes up to now. */
  private advance(): void {
    const nowMs = this.clock.nowMs();
    const elapsedMs = nowMs - this.lastMs;
    this.lastMs = nowMs;
    if (elapsedMs <= 0 || this.active.length === 0) return;
    const share = (this.bytesPerMs() * elapsedMs) / this.active.length;
    for (const flight of this.active) flight.remainingBytes -= share;
  }

  enter(flight: Flight): void {
    this.advance();
    flight.link = this;
    if (this.active.length < this.streams) this.active.push(flight);
    else this.waiting.push(flight);
    this.reschedule();
  }

  remove(flight: Flight): void {
    this.advance();
    const i = this.active.indexOf(flight);
    if (i >= 0) this.active.splice(i, 1);
    this.admitWaiting();
    this.reschedule();
  }

  setFactor(factor: number): void {
    this.advance();
    this.factor = factor;
    this.reschedule();
  }

  private admitWaiting(): void {
    while (this.active.length < this.streams && this.waitingHead < this.waiting.length) {
      const flight = this.waiting[this.waitingHead++]!;
      if (!flight.cancelled) this.active.push(flight);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private reschedule(): void {
    if (this.next) this.clock.cancel(this.next);
    this.next = null;
    if (this.active.length === 0) return;
    let least = Number.POSITIVE_INFINITY;
    for (const flight of this.active) least = Math.min(least, flight.remainingBytes);
    const delayMs = Math.max(0, Math.ceil((Math.max(0, least) * this.active.length) / this.bytesPerMs()));
    this.next = this.clock.at(this.clock.nowMs() + delayMs, () => this.tick());
  }

  private tick(): void {
    this.next = null;
    this.advance();
    const done: Flight[] = [];
    for (let i = this.active.length - 1; i >= 0; i--) {
      const flight = this.active[i]!;
      if (flight.remainingBytes <= DONE_EPSILON_BYTES) {
        this.active.splice(i, 1);
        done.push(flight);
      }
    }
    this.admitWaiting();
    this.reschedule();
    // Landed in the order they were started, whatever order the scan found them in.
    for (const flight of done.reverse()) this.landed(flight);
  }
}

export interface SimTransfersOptions {
  clock: VirtualClock;
  topology: Topology;
  streamsPerLink: number;
  random: RandomStream;
  ledger: StorageLedger;
}

export class SimTransfers implements FileMover {
  private readonly links = new Map<string, Link>();
  private readonly active = new Map<string, ActiveSubscription>();
  private readonly slowdowns: { from: string; to: string; factor: number }[] = [];
  readonly totals: TransferTotals = { files: 0, failedFiles: 0, bytes: 0, bytesByLink: new Map() };

  constructor(
    private readonly options: SimTransfersOptions,
    private readonly events: TransferEvents,
  ) {}

  submit(request: TransferRequest): boolean {
    if (this.active.has(request.subscriptionId)) return false;
    const { clock } = this.options;
    const destination = this.physical(request.destSite);
    const jobId = dispatchJobId(request.subscriptionId);
    const subscription: ActiveSubscription = { remaining: request.files.length, failed: [], flights: [] };
    this.active.set(request.subscriptionId, subscription);
    for (const file of request.files) {
      const source = this.physical(file.sourceSite);
      const flight: Flight = {
        subscriptionId: request.subscriptionId,
        jobId,
        lfn: file.lfn,
        sizeBytes: file.sizeBytes,
        remainingBytes: file.sizeBytes,
        destination: destination.name,
        // Only dispatch (stage-in) transfers fail by the site's probability; outputs fail only when storage is full.
        fails: jobId !== null && this.options.random.chance(destination.config.failures.stagein),
        link: null,
        cancelled: false,
      };
      subscription.flights.push(flight);
      if (source.name === destination.name) {
        clock.at(clock.nowMs(), () => this.land(flight, null));
        continue;
      }
      const link = this.link(source, destination);
      clock.at(clock.nowMs() + link.latencyMs, () => {
        if (!flight.cancelled) link.enter(flight);
      });
    }
    if (request.files.length === 0) clock.at(clock.nowMs(), () => this.complete(request.subscriptionId));
    return true;
  }

  cancel(subscriptionId: string): boolean {
    const subscription = this.active.get(subscriptionId);
    if (!subscription) return false;
    this.active.delete(subscriptionId);
    for (const flight of subscription.flights) {
      flight.cancelled = true;
      flight.link?.remove(flight);
    }
    return true;
  }

  /** Multiplies the bandwidth of matching links ("*" matches any site) until `end` is called. */
  slowDown(from: string, to: string, factor: number): () => void {
    const slowdown = { from, to, factor };
    this.slowdowns.push(slowdown);
    this.refreshFactors();
    return () => {
      this.slowdowns.splice(this.slowdowns.indexOf(slowdown), 1);
      this.refreshFactors();
    };
  }

  private refreshFactors(): void {
    for (const link of this.links.values()) {
      const factor = this.factorFor(link.key);
      if (factor !== link.factor) link.setFactor(factor);
    }
  }

  private factorFor(key: string): number {
    const [from, to] = key.split(">") as [string, string];
    let factor = 1;
    for (const s of this.slowdowns) {
      if ((s.from === "*" || s.from === from) && (s.to === "*" || s.to === to)) factor *= s.factor;
    }
    return factor;
  }

  private physical(queue: string): PhysicalSite {
    const site = this.options.topology.physicalOf.get(queue);
    if (!site) throw new Error(`transfer for unknown site ${queue}`);
    return site;
  }

  private link(source: PhysicalSite, destination: PhysicalSite): Link {
    const key = `${source.name}>${destination.name}`;
    let link = this.links.get(key);
    if (!link) {
      const override = source.config.links[destination.name] ?? destination.config.links[source.name] ?? {};
      const bandwidth = override.bandwidth ?? Math.min(source.config.bandwidth, destination.config.bandwidth);
      const latency = override.latency ?? Math.max(source.config.latency, destination.config.latency);
      link = new Link(key, bandwidth, latency, this.options.streamsPerLink, this.options.clock, (flight) =>
        this.land(flight, key),
      );
      link.factor = this.factorFor(key);
      this.links.set(key, link);
    }
    return link;
  }

  private land(flight: Flight, linkKey: string | null): void {
    if (flight.cancelled) return;
    const subscription = this.active.get(flight.subscriptionId);
    if (!subscription) return;
    const { ledger } = this.options;
    const full = linkKey !== null && !ledger.fits(flight.destination, flight.sizeBytes);
    if (flight.fails || full) {
      const reason = full ? "destination storage is full" : "transfer failed (simulated)";
      this.totals.failedFiles++;
      subscription.failed.push(flight.lfn);
      this.events.onFileFailed(flight.subscriptionId, flight.lfn, new Error(reason), 1, false);
    } else {
      if (linkKey !== null) {
        this.totals.files++;
        this.totals.bytes += flight.sizeBytes;
        this.totals.bytesByLink.set(linkKey, (this.totals.bytesByLink.get(linkKey) ?? 0) + flight.sizeBytes);
        if (flight.jobId) ledger.addDispatch(flight.jobId, flight.destination, flight.sizeBytes);
        else ledger.add(flight.destination, flight.sizeBytes);
      }
      this.events.onFileDone(flight.subscriptionId, flight.lfn, { skipped: linkKey === null });
    }
    subscription.remaining--;
    if (subscription.remaining === 0) this.complete(flight.subscriptionId);
  }

  private complete(subscriptionId: string): void {
    const subscription = this.active.get(subscriptionId);
    if (!subscription) return;
    this.active.delete(subscriptionId);
    this.events.onComplete(subscriptionId, {
      ok: subscription.failed.length === 0,
      failedFiles: subscription.failed,
    });
  }

  /** Files in flight or waiting for a stream, per link: the transfer backlog. */
  inFlight(): number {
    let n = 0;
    for (const subscription of this.active.values()) n += subscription.remaining;
    return n;
  }
}

/** `dis.<jobId>@<site>` is a job's dispatch subscription; anything else moves outputs or replicas. */
function dispatchJobId(subscriptionId: string): string | null {
  if (!subscriptionId.startsWith("dis.")) return null;
  const at = subscriptionId.lastIndexOf("@");
  return at > 4 ? subscriptionId.slice(4, at) : null;
}
