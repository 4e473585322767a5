/**
 * The workload half of a server node: the actor runtime with the workload
 * kinds, and the services that answer their effects (brokerage, transfers,
 * site queues and quotas). The pilot gateway and the API sit on top of it.
 */
import { z } from "zod";
import { registerWorkloadKinds } from "../actors/index.js";
import { DEFAULT_SHARE, effectiveShares, fairShareConfigSchema } from "../brokerage/shares.js";
import { BrokerageConfigSchema } from "../brokerage/types.js";
import { validate } from "../protocol/codec.js";
import type { TimerHandle } from "../runtime/clock.js";
import { KindRegistry } from "../runtime/kinds.js";
import { type Logger, silentLogger } from "../runtime/logger.js";
import { Runtime, type RuntimeOptions } from "../runtime/runtime.js";
import type { CommittedTransition } from "../runtime/shard-host.js";
import type { SandboxStore } from "../sandbox/sandbox-store.js";
import type { QueueIndex } from "../store/queue-index.js";
import type { Store } from "../store/types.js";
import { createStorageElement, type StorageConfig } from "../transfer/storage-config.js";
import type { StorageElement } from "../transfer/storage-element.js";
import {
  type FileMover,
  TransferAgent,
  TransferAgentConfigSchema,
  type TransferEvents,
} from "../transfer/transfer-agent.js";
import { brokerageHandler, brokerageInline } from "./brokerage-service.js";
import type { WorkloadContext } from "./context.js";
import { type FileToPut, putFiles } from "./datasets.js";
import { writeGlobalIndexes } from "./global-indexes.js";
import { gridSiteSchema } from "./grid-site.js";
import { GridStorage } from "./grid-storage.js";
import { IncidentLog } from "./incident-log.js";
import { type QueueEntry, QueueService, type ThreadOffer } from "./queue-service.js";
import { siteOfflineHandler } from "./reassign.js";
import { forgetSiteSnapshots, primeSiteSnapshots } from "./site-stats-cache.js";
import { ensureSite } from "./sites.js";
import { sweepStaleWaits } from "./stale-queue-sweep.js";
import { submitTask } from "./submit.js";
import { TransferService } from "./transfer-service.js";

/** A grid's sites and the settings of its workload services: one schema, errors that name the field. */
export const gridConfigSchema = z.object({
  sites: z.array(gridSiteSchema).default([]),
  brokerage: BrokerageConfigSchema.prefault({}),
  maxActiveJobsPerUser: z.number().int().positive().default(10_000),
  /** Global fair shares of each site's running slots, and the user priority rule (docs/workload.md, "Fair share"). */
  fairShare: fairShareConfigSchema.prefault({}),
  /** Candidate sites kept in each job's brokerage decision; null keeps all. */
  maxRecordedCandidates: z.number().int().positive().nullable().default(null),
  /**
   * How long brokerage reuses its read of the sites' statistics (a site's
   * change of status or pilots on this node drops it at once); 0 reads them
   * for every decision. While a read is fresh, a job is brokered inline, in
   * its creation's commit (docs/workload.md).
   */
  siteStatsTtlMs: z.number().int().nonnegative().default(1_000),
  /** How old the live-job counts brokerage weighs sites by may be; site status and failures are read fresh. */
  liveJobsMaxAgeMs: z.number().int().nonnegative().default(500),
  /** How often throttled jobs are released against the quota from the committed counts (see `QueueService.sweep`). */
  quotaSweepMs: z.number().int().positive().default(5_000),
  /**
   * How often this node looks through the queues of its shards for jobs that
   * waited at a site longer than the site's `reassignAfterMs`, and reassigns
   * them (src/workload/stale-queue-sweep.ts).
   */
  staleSweepMs: z.number().int().positive().default(60_000),
  transfer: TransferAgentConfigSchema.prefault({}),
  /** How often this node clears its sites' storage elements of temp files that writers left behind. */
  storageSweepMs: z.number().int().positive().default(3_600_000),
  /** A temp file older than this is abandoned (no put or copy runs that long). */
  storageTempMaxAgeMs: z.number().int().positive().default(86_400_000),
});
export type GridConfig = z.input<typeof gridConfigSchema>;

export interface GridOptions {
  store: Store;
  index: QueueIndex;
  /** A site with local storage keeps its files in the directory `<storageRoot>/<site>`. */
  storageRoot: string;
  config: GridConfig;
  runtime?: Omit<RuntimeOptions, "store" | "registry">;
  log?: Logger;
  /**
   * What moves files for subscriptions; the transfer agent over the sites'
   * storage elements by default. A simulation passes a mover that completes
   * transfers on its virtual clock and reports through the same events.
   */
  mover?: (events: TransferEvents) => FileMover;
}

export class Grid {
  readonly runtime: Runtime;
  readonly ctx: WorkloadContext;
  readonly transfers: FileMover;
  /** The incident log: the actors' incidents arrive as effects; the API records its own. */
  readonly incidents: IncidentLog;
  private readonly config: z.output<typeof gridConfigSchema>;
  private readonly storageRoot: string;
  private pilotCounter: (site: string) => number = () => 0;
  private threadOffer: (entry: QueueEntry, nowMs: number) => ThreadOffer | null = () => null;
  private readonly queues: QueueService;
  private sweepTimer: TimerHandle | null = null;
  private staleSweepTimer: TimerHandle | null = null;
  private storageSweepTimer: TimerHandle | null = null;
  private running = false;

  constructor(options: GridOptions) {
    this.config = validate(gridConfigSchema, options.config, "grid configuration");
    this.storageRoot = options.storageRoot;
    const log = options.log ?? silentLogger;
    const registry = registerWorkloadKinds(new KindRegistry());
    this.runtime = new Runtime({ ...options.runtime, store: options.store, registry, log });
    // A saturated node admits new jobs no faster than it serves those it activated.
    if (this.runtime.stats().intake) this.watchActivatedJobs();
    const storage = new GridStorage();
    const shares = effectiveShares(this.config.fairShare);
    this.ctx = {
      runtime: this.runtime,
      index: options.index,
      storage,
      sandboxes: null,
      settings: {
        brokerage: this.config.brokerage,
        maxActiveJobsPerUser: this.config.maxActiveJobsPerUser,
        fairShare: this.config.fairShare,
        shares,
        queueShares: [...new Set([...shares.map((s) => s.name), DEFAULT_SHARE])],
        maxRecordedCandidates: this.config.maxRecordedCandidates,
        siteStatsTtlMs: this.config.siteStatsTtlMs,
        liveJobsMaxAgeMs: this.config.liveJobsMaxAgeMs,
      },
      log,
      connectedPilots: (site) => this.pilotCounter(site),
      offerThread: (entry, nowMs) => this.threadOffer(entry, nowMs),
    };
    this.incidents = new IncidentLog(options.index);
    writeGlobalIndexes(this.runtime, options.index, this.incidents);
    const transferService = new TransferService(this.ctx);
    this.transfers =
      options.mover?.(transferService.events) ??
      new TransferAgent({
        storage,
        events: transferService.events,
        config: this.config.transfer,
        onCallbackError: (err) => log.error({ err: (err as Error).message }, "transfer callback failed"),
      });
    transferService.attach(this.transfers);
    const queues = new QueueService(this.ctx);
    this.queues = queues;
    this.runtime.onEffect("broker.request", brokerageHandler(this.ctx), {
      inline: brokerageInline(this.ctx),
    });
    this.runtime.onTransitions((transitions) => {
      for (const t of transitions) {
        if (t.actor.startsWith("site/") && changesWhatBrokerageSees(t)) {
          forgetSiteSnapshots(this.ctx, t.entry.event.type === "create");
          return;
        }
      }
    });
    this.runtime.onEffect("transfer.start", transferService.start);
    this.runtime.onEffect("transfer.cancel", transferService.cancel);
    this.runtime.onEffect("queue.add", queues.add, { inline: queues.admit });
    this.runtime.onEffect("job.final", queues.final, { inline: queues.finalInline });
    this.runtime.onEffect("site.offline", siteOfflineHandler(this.ctx));
    // Written by nodes before the queues were projections; the job's state took it out of the queue since.
    this.runtime.onEffect("queue.remove", () => {});
    // Until a dispatcher takes over pilot kills (the gateway does), a kill has no pilot to reach.
    this.runtime.onEffect("pilot.kill", () => {});
    for (const site of this.config.sites) this.attachStorage(site.name, site.storage);
  }

  /** Where users' sandboxes are kept; set by the server node, which owns the store's storage element. */
  attachSandboxStore(store: SandboxStore): void {
    this.ctx.sandboxes = store;
    this.ctx.storage.sandboxElement = store.element;
  }

  /** Counts connected pilots per site for brokerage; set by the dispatcher. */
  setPilotCounter(counter: (site: string) => number): void {
    this.pilotCounter = counter;
  }

  /** Offers each job being activated to a waiting pilot thread; set by the dispatcher. */
  setThreadOffer(offer: (entry: QueueEntry, nowMs: number) => ThreadOffer | null): void {
    this.threadOffer = offer;
  }

  private attachStorage(site: string, config: StorageConfig): void {
    if (this.ctx.storage.has(site)) return;
    this.ctx.storage.set(site, createStorageElement(config, site, this.storageRoot));
  }

  async start(): Promise<void> {
    await this.runtime.start();
    this.running = true;
    this.scheduleQuotaSweep();
    this.scheduleStaleSweep();
    this.scheduleStorageSweep();
    const atMs = this.runtime.clock.nowMs();
    for (const { storage: _, ...site } of this.config.sites) await ensureSite(this.ctx, { ...site, atMs });
    await primeSiteSnapshots(this.ctx);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.sweepTimer) this.runtime.clock.clearTimer(this.sweepTimer);
    if (this.staleSweepTimer) this.runtime.clock.clearTimer(this.staleSweepTimer);
    if (this.storageSweepTimer) this.runtime.clock.clearTimer(this.storageSweepTimer);
    await this.runtime.stop();
  }

  /** On the runtime's clock, so a simulation's virtual time drives it like every other timer. */
  private scheduleQuotaSweep(): void {
    if (!this.running) return;
    this.sweepTimer = this.runtime.clock.setTimer(() => {
      void this.queues
        .sweep()
        .catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, "quota sweep failed"))
        .finally(() => this.scheduleQuotaSweep());
    }, this.config.quotaSweepMs);
  }

  /** On the runtime's clock too; the next sweep is timed from the end of the last. */
  private scheduleStaleSweep(): void {
    if (!this.running) return;
    this.staleSweepTimer = this.runtime.clock.setTimer(() => {
      void sweepStaleWaits(this.ctx)
        .catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, "stale sweep failed"))
        .finally(() => this.scheduleStaleSweep());
    }, this.config.staleSweepMs);
  }

  /** Temp files are aged by the wall clock, whatever clock drives the runtime: they are real files. */
  private scheduleStorageSweep(): void {
    if (!this.running) return;
    this.storageSweepTimer = this.runtime.clock.setTimer(() => {
      void this.sweepStorage().finally(() => this.scheduleStorageSweep());
    }, this.config.storageSweepMs);
  }

  /** Clears every site's storage element, and the sandboxes', of abandoned temp files; answers how many went. */
  async sweepStorage(): Promise<number> {
    let removed = 0;
    const { sandboxElement } = this.ctx.storage;
    const elements: [string, StorageElement][] = [...this.ctx.storage];
    if (sandboxElement !== null) elements.push(["(sandboxes)", sandboxElement]);
    for (const [site, element] of elements) {
      try {
        removed += (await element.sweepTemp?.(this.config.storageTempMaxAgeMs)) ?? 0;
      } catch (err) {
        this.ctx.log.warn({ site, err: (err as Error).message }, "storage temp sweep failed");
      }
    }
    return removed;
  }

  /** Admission control's view of the jobs: those activated here, and how many have left that state. */
  private watchActivatedJobs(): void {
    let served = 0;
    this.runtime.onTransitions((transitions) => {
      for (const t of transitions) if (leftActivated(t)) served++;
    });
    this.runtime.watchIntakeQueue({ waiting: () => activatedJobs(this.runtime), served: () => served });
  }

  submit(submission: unknown, user: string) {
    return submitTask(this.ctx, submission, user);
  }

  putFiles(dataset: string, site: string, files: FileToPut[]) {
    return putFiles(this.ctx, dataset, site, files);
  }
}

/** Jobs activated at any site, on the shards this node owns: what its pilots are to be served. */
function activatedJobs(runtime: Runtime): number {
  let activated = 0;
  for (const [name, value] of runtime.local.counters("jobs:")) {
    // A site's counters end in ":<state>" (siteJobsCounter); checked without parsing every name each tick.
    if (name.endsWith(":activated")) activated += value;
  }
  return activated;
}

/** A job's transition out of `activated`: an event that keeps it there (refused or not) serves nothing. */
function leftActivated(t: CommittedTransition): boolean {
  return t.entry.from === "activated" && t.entry.to !== "activated" && t.actor.startsWith("job/");
}

/** Site events that change more than its statistics: brokerage should not wait for its next read to see them. */
const SITE_EVENTS_BROKERAGE_WAITS_FOR = new Set(["create", "setStatus", "pilots.provisioned", "pilot.seen"]);

function changesWhatBrokerageSees(t: CommittedTransition): boolean {
  return t.entry.from !== t.entry.to || SITE_EVENTS_BROKERAGE_WAITS_FOR.has(t.entry.event.type);
}
