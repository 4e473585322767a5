/**
 * Copies the files of subscriptions into their destination storage element,
 * a bounded number at a time, retrying with exponential backoff. Files already
 * at the destination with the right size and checksum are not copied again.
 * Between two elements that can (two XRootD servers) the copy is third-party;
 * otherwise the bytes stream through this node, never landing on its disk.
 */

import { z } from "zod";
import { describeIssues } from "../protocol/codec.js";
import { CodedError } from "../protocol/coded-error.js";
import { parseChecksum } from "./checksum.js";
import { isStorageError, type StorageElement, storedFileMatches } from "./storage-element.js";

export const TransferFileSchema = z.object({
  lfn: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
  checksum: z.string().refine((c) => parseChecksum(c) !== null, "must be adler32:<8 hex> or sha256:<64 hex>"),
  sourceSite: z.string().min(1),
});
export type TransferFile = z.infer<typeof TransferFileSchema>;

export const TransferRequestSchema = z.object({
  subscriptionId: z.string().min(1),
  files: z.array(TransferFileSchema),
  destSite: z.string().min(1),
});
export type TransferRequest = z.infer<typeof TransferRequestSchema>;

export interface TransferResult {
  ok: boolean;
  failedFiles: string[];
}

/** How a mover reports; called in the order things happen, never after a cancel. */
export interface TransferEvents {
  /** `skipped` when the destination already held the file with the right checksum. */
  onFileDone(subscriptionId: string, lfn: string, outcome: { skipped: boolean }): void;
  /** Every failed attempt; `willRetry` false means this file has given up. */
  onFileFailed(subscriptionId: string, lfn: string, error: Error, attempt: number, willRetry: boolean): void;
  onComplete(subscriptionId: string, result: TransferResult): void;
}

/** All the rest of the system needs of whatever moves files, so an external mover can stand in. */
export interface FileMover {
  /** Starts serving a subscription; false when it is already being served (a repeated effect). */
  submit(request: TransferRequest): boolean;
  /** Drops a subscription's outstanding work; no more events for it. False when it was not active. */
  cancel(subscriptionId: string): boolean;
}

export const TransferAgentConfigSchema = z.object({
  /** Files copied at once, across all subscriptions. */
  concurrency: z.number().int().positive().default(4),
  /** Attempts per file, the first included. */
  maxAttempts: z.number().int().positive().default(3),
  /** Delay before attempt n+1 is base x 2^(n-1), capped. */
  retryBaseDelayMs: z.number().nonnegative().default(1000),
  retryMaxDelayMs: z.number().nonnegative().default(60_000),
});
export type TransferAgentConfig = z.infer<typeof TransferAgentConfigSchema>;

export interface TransferAgentOptions {
  /** Storage elements by site; the owner may add sites while the agent runs. */
  storage: ReadonlyMap<string, StorageElement>;
  events: TransferEvents;
  config?: z.input<typeof TransferAgentConfigSchema>;
  /** Waits between attempts; a simulation passes its virtual clock's. */
  sleep?: (ms: number) => Promise<void>;
  /** Where a logical file lives inside every storage element; the lfn itself by default. */
  pathForLfn?: (lfn: string) => string;
  /** A throwing event callback is reported here instead of breaking the agent. */
  onCallbackError?: (err: unknown) => void;
}

export type TransferErrorCode = "BAD_REQUEST" | "UNKNOWN_SITE";

export class TransferError extends CodedError<TransferErrorCode> {
  override readonly name = "TransferError";
}

interface SubscriptionState {
  request: TransferRequest;
  remaining: number;
  failedFiles: string[];
  cancelled: boolean;
}

interface FileTask {
  subscription: SubscriptionState;
  file: TransferFile;
  attempt: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Failures that another attempt cannot fix. */
function isPermanent(err: unknown): boolean {
  if (err instanceof TransferError) return true;
  return (
    isStorageError(err) && (err.code === "BAD_PATH" || err.code === "BAD_CHECKSUM" || err.code === "BAD_SIZE")
  );
}

export class TransferAgent implements FileMover {
  private readonly config: TransferAgentConfig;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly pathForLfn: (lfn: string) => string;
  private readonly subscriptions = new Map<string, SubscriptionState>();
  private queue: FileTask[] = [];
  private activeCopies = 0;
  private waitingRetries = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: TransferAgentOptions) {
    const parsed = TransferAgentConfigSchema.safeParse(options.config ?? {});
    if (!parsed.success) throw badRequest("transfer agent config", parsed.error);
    this.config = parsed.data;
    this.sleep = options.sleep ?? defaultSleep;
    this.pathForLfn = options.pathForLfn ?? ((lfn) => lfn);
  }

  submit(request: TransferRequest): boolean {
    const parsed = TransferRequestSchema.safeParse(request);
    if (!parsed.success) throw badRequest("transfer request", parsed.error);
    const { subscriptionId, files } = parsed.data;
    if (this.subscriptions.has(subscriptionId)) return false;
    // One copy per logical file, however often the request lists it.
    const unique = [...new Map(files.map((f) => [f.lfn, f])).values()];
    const subscription: SubscriptionState = {
      request: { ...parsed.data, files: unique },
      remaining: unique.length,
      failedFiles: [],
      cancelled: false,
    };
    this.subscriptions.set(subscriptionId, subscription);
    if (unique.length === 0) {
      // Reported asynchronously like every other completion, so submit never calls back into its caller.
      queueMicrotask(() => this.complete(subscription));
      return true;
    }
    for (const file of unique) this.queue.push({ subscription, file, attempt: 1 });
    this.pump();
    return true;
  }

  cancel(subscriptionId: string): boolean {
    const subscription = this.subscriptions.get(subscriptionId);
    if (subscription === undefined) return false;
    subscription.cancelled = true;
    this.subscriptions.delete(subscriptionId);
    this.queue = this.queue.filter((task) => task.subscription !== subscription);
    this.settleIdle();
    return true;
  }

  stats(): { subscriptions: number; queuedFiles: number; activeCopies: number; waitingRetries: number } {
    return {
      subscriptions: this.subscriptions.size,
      queuedFiles: this.queue.length,
      activeCopies: this.activeCopies,
      waitingRetries: this.waitingRetries,
    };
  }

  /** Resolves once nothing is copying, queued or waiting to retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.activeCopies === 0 && this.queue.length === 0 && this.waitingRetries === 0;
  }

  private settleIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private pump(): void {
    while (this.activeCopies < this.config.concurrency) {
      const task = this.queue.shift();
      if (task === undefined) break;
      this.activeCopies += 1;
      void this.attempt(task).then(() => {
        this.activeCopies -= 1;
        this.pump();
        this.settleIdle();
      });
    }
  }

  private async attempt(task: FileTask): Promise<void> {
    const { subscription, file, attempt } = task;
    const id = subscription.request.subscriptionId;
    try {
      const outcome = await this.copy(subscription.request.destSite, file);
      if (subscription.cancelled) return;
      this.notify(() => this.options.events.onFileDone(id, file.lfn, outcome));
      this.fileSettled(subscription);
    } catch (raw) {
      if (subscription.cancelled) return;
      const error = raw instanceof Error ? raw : new Error(String(raw));
      const willRetry = attempt < this.config.maxAttempts && !isPermanent(error);
      this.notify(() => this.options.events.onFileFailed(id, file.lfn, error, attempt, willRetry));
      if (willRetry) {
        this.retryLater({ ...task, attempt: attempt + 1 });
      } else {
        subscription.failedFiles.push(file.lfn);
        this.fileSettled(subscription);
      }
    }
  }

  private async copy(destSite: string, file: TransferFile): Promise<{ skipped: boolean }> {
    const dest = this.element(destSite);
    const path = this.pathForLfn(file.lfn);
    const expected = { sizeBytes: file.sizeBytes, checksum: file.checksum };
    const present = await dest.stat(path);
    if (present !== null) {
      if (storedFileMatches(present, expected)) return { skipped: true };
      // A replica with the wrong bytes under this name is worse than none, and would block the right one.
      await dest.delete(path);
    }
    const source = this.element(file.sourceSite);
    // Server to server when the pair can: the bytes never pass through this node.
    const copied = await dest.copyFrom?.(source, path, expected);
    if (copied) return { skipped: !copied.created };
    const stream = await source.get(path);
    try {
      const stored = await dest.put(path, stream, expected);
      return { skipped: !stored.created };
    } finally {
      stream.destroy();
    }
  }

  private retryLater(task: FileTask): void {
    const exponent = task.attempt - 2;
    const delayMs = Math.min(this.config.retryMaxDelayMs, this.config.retryBaseDelayMs * 2 ** exponent);
    this.waitingRetries += 1;
    const requeue = () => {
      this.waitingRetries -= 1;
      if (!task.subscription.cancelled) this.queue.push(task);
      this.pump();
      this.settleIdle();
    };
    this.sleep(delayMs).then(requeue, requeue);
  }

  private fileSettled(subscription: SubscriptionState): void {
    subscription.remaining -= 1;
    if (subscription.remaining === 0) this.complete(subscription);
  }

  private complete(subscription: SubscriptionState): void {
    if (subscription.cancelled) return;
    const { subscriptionId } = subscription.request;
    this.subscriptions.delete(subscriptionId);
    const result = { ok: subscription.failedFiles.length === 0, failedFiles: subscription.failedFiles };
    this.notify(() => this.options.events.onComplete(subscriptionId, result));
  }

  private element(site: string): StorageElement {
    const element = this.options.storage.get(site);
    if (element === undefined)
      throw new TransferError("UNKNOWN_SITE", `no storage element for site ${site}`, { site });
    return element;
  }

  private notify(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      if (this.options.onCallbackError) this.options.onCallbackError(err);
      else process.emitWarning(`transfer agent event callback threw: ${String(err)}`);
    }
  }
}

function badRequest(what: string, error: z.ZodError): TransferError {
  const issues = describeIssues(error);
  return new TransferError(
    "BAD_REQUEST",
    `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    {
      issues,
    },
  );
}
