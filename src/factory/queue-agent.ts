// One queue of a factory: each poll it reconciles its batch jobs with their records, reads the site's demand, and submits or cancels.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { QueueReport, QueueThrottle } from "../actors/factory/schema.js";
import type { PandaClient, PilotJobRow } from "../cli/client.js";
import { TOKEN_ENV } from "../pilot/pilot.js";
import type { Logger } from "../runtime/logger.js";
import {
  type BatchJobState,
  type BatchJobStatus,
  type BatchSystem,
  ENDED_BATCH_STATES,
} from "./batch-system.js";
import type { FactoryConfig, QueueConfig } from "./config.js";
import { decide, type SiteDemand } from "./demand.js";
import { type LaunchTarget, pilotArgv } from "./pilot-launch.js";
import { QueueThrottleState } from "./throttle.js";

export interface QueueAgentDeps {
  factory: FactoryConfig;
  queue: QueueConfig;
  client: PandaClient;
  batch: BatchSystem;
  /** The Node binary, server and bundle checksum a new job runs with, as of now. */
  launchTarget(): Promise<LaunchTarget>;
  log: Logger;
}

const RANK: Record<string, number> = { submitting: 0, queued: 1, running: 2 };
/** A record the batch system does not list for this many polls in a row is lost. */
const MISSING_POLLS_BEFORE_LOST = 3;
/** Left for the queue wait's allowance to run out and the walltime to end, on top of both. */
const TOKEN_SLACK_SEC = 600;

function isEnded(state: string): boolean {
  return ENDED_BATCH_STATES.has(state as BatchJobState) || state === "lost";
}

/** `factory.queue.<time><random>`: unique, sortable, and readable in `squeue`. */
function newPilotJobId(factory: string, queue: string): string {
  return `${factory}.${queue}.${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
}

/**
 * Keeps one queue's batch jobs in step with the site's demand. Every batch
 * job has a durable record on the server, created before the job is
 * submitted and named in the batch system by its id, so a factory killed at
 * any point finds, after a restart, each job either in the batch system
 * (adopted) or not (the record is marked lost): none submitted twice, none
 * forgotten.
 */
export class QueueAgent {
  private readonly records = new Map<string, PilotJobRow>();
  private readonly missingPolls = new Map<string, number>();
  readonly throttle: QueueThrottleState;
  private demand: SiteDemand | null = null;
  private lastError: string | null = null;
  readonly idPrefix: string;

  constructor(private readonly deps: QueueAgentDeps) {
    this.throttle = new QueueThrottleState(deps.queue.throttle);
    this.idPrefix = `${deps.factory.name}.${deps.queue.name}.`;
  }

  get name(): string {
    return this.deps.queue.name;
  }

  /** Loads the queue's live records from the server, and the throttle from its last report. */
  async adopt(lastThrottle: QueueThrottle | null, nowMs: number): Promise<number> {
    const live = await this.deps.client.listPilotJobs({
      factory: this.deps.factory.name,
      live: true,
      limit: 5000,
    });
    for (const row of live) if (row.queue === this.name) this.records.set(row.id, row);
    if (lastThrottle) this.throttle.restore(lastThrottle, nowMs);
    return this.records.size;
  }

  /** One poll. Failures are kept for the report and the log; the next poll tries again. */
  async poll(nowMs: number): Promise<void> {
    try {
      const statuses = (await this.deps.batch.status()).filter((s) => s.pilotJobId.startsWith(this.idPrefix));
      await this.reconcile(statuses, nowMs);
      const demand = await this.deps.client.siteDemand(this.deps.queue.site);
      this.demand = {
        activated: demand.activated,
        assigned: demand.assigned,
        idleThreads: demand.idleThreads,
      };
      await this.act(this.demand, nowMs);
      this.lastError = null;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.deps.log.warn({ queue: this.name, err: this.lastError }, "poll failed");
    }
  }

  report(nowMs: number): QueueReport {
    const { queue } = this.deps;
    const jobs = { submitting: 0, queued: 0, running: 0 };
    for (const record of this.records.values())
      if (record.state in jobs) jobs[record.state as keyof typeof jobs] += 1;
    return {
      name: queue.name,
      site: queue.site,
      batchSystem: queue.batchSystem,
      partition: queue.partition ?? null,
      maxQueued: queue.maxQueued,
      maxRunning: queue.maxRunning,
      pilotsPerJob: queue.pilotsPerJob,
      jobs,
      demand: this.demand,
      submissionsPerMin: this.throttle.submissionsPerMin(nowMs),
      throttle: this.throttle.view(),
      lastError: this.lastError,
    };
  }

  /** Records that are not ended: what the queue has in the batch system as far as it knows. */
  liveRecords(): PilotJobRow[] {
    return [...this.records.values()];
  }

  private async reconcile(statuses: BatchJobStatus[], nowMs: number): Promise<void> {
    const byId = new Map(statuses.map((s) => [s.pilotJobId, s]));
    for (const status of statuses) {
      if (this.records.has(status.pilotJobId) || ENDED_BATCH_STATES.has(status.state)) continue;
      // A live job without a live record: submitted by a run that died before it recorded the submission.
      this.deps.log.info(
        { queue: this.name, pilotJob: status.pilotJobId, batchId: status.batchId },
        "adopting",
      );
      const { pilotJob } = await this.put(status.pilotJobId, undefined);
      this.records.set(status.pilotJobId, pilotJob);
    }
    for (const record of [...this.records.values()]) {
      const status = byId.get(record.id);
      if (status) {
        this.missingPolls.delete(record.id);
        await this.observe(record, status, nowMs);
        continue;
      }
      const missing = (this.missingPolls.get(record.id) ?? 0) + 1;
      this.missingPolls.set(record.id, missing);
      if (missing < MISSING_POLLS_BEFORE_LOST) continue;
      const reason =
        record.state === "submitting"
          ? "it never reached the batch system (the factory stopped while submitting it)"
          : "the batch system no longer knows it";
      await this.end(record, { type: "lost", reason }, nowMs);
    }
  }

  private async observe(record: PilotJobRow, status: BatchJobStatus, nowMs: number): Promise<void> {
    const ended = ENDED_BATCH_STATES.has(status.state);
    if (!ended && (RANK[status.state] ?? 0) <= (RANK[record.state] ?? 0)) return;
    const event = {
      type: "observed",
      state: status.state,
      batchId: status.batchId,
      exitCode: status.exitCode,
      reason: status.reason,
    };
    if (!ended) {
      const { pilotJob } = await this.put(record.id, event, `${record.id}:${status.state}`);
      this.records.set(record.id, pilotJob);
      return;
    }
    await this.end(record, event, nowMs, status);
  }

  private async end(
    record: PilotJobRow,
    event: Record<string, unknown>,
    nowMs: number,
    status?: BatchJobStatus,
  ): Promise<void> {
    const { pilotJob } = await this.put(record.id, event, `${record.id}:end`);
    this.records.delete(record.id);
    this.missingPolls.delete(record.id);
    rmSync(this.workdirOf(record.id), { recursive: true, force: true });
    if (!isEnded(pilotJob.state)) return;
    this.throttle.recordEnd({
      state: pilotJob.state as "done" | "failed" | "cancelled" | "lost",
      exitCode: pilotJob.exitCode,
      startedAtMs: status?.startedAtMs ?? null,
      endedAtMs: status?.endedAtMs ?? nowMs,
    });
    this.deps.log.info(
      {
        queue: this.name,
        pilotJob: record.id,
        state: pilotJob.state,
        exitCode: pilotJob.exitCode,
        reason: pilotJob.reason,
      },
      "pilot job ended",
    );
  }

  private async act(demand: SiteDemand, nowMs: number): Promise<void> {
    const { queue } = this.deps;
    const live = [...this.records.values()];
    const queued = live.filter((r) => r.state === "queued" || r.state === "submitting");
    const running = live.filter((r) => r.state === "running");
    const stale = queued.filter(
      (r) => r.state === "queued" && nowMs - (r.timestamps.queued ?? nowMs) > queue.maxQueueWaitSec * 1000,
    );
    const decision = decide(demand, { queued: queued.length - stale.length, running: running.length }, queue);
    // Newest first: the oldest queued jobs are the likeliest to start next.
    const surplus = queued
      .filter((r) => r.state === "queued" && !stale.includes(r) && r.cancelReason === null)
      .sort((a, b) => (b.timestamps.submitting ?? 0) - (a.timestamps.submitting ?? 0))
      .slice(0, decision.cancel);
    await this.cancel(stale, `queued longer than ${queue.maxQueueWaitSec} s (its pilot token would expire)`);
    await this.cancel(surplus, "demand dropped: no waiting job needs it");
    const allowed = this.throttle.allowed(decision.submit, nowMs, queued.length + running.length);
    for (let i = 0; i < allowed; i++) await this.submitOne(nowMs);
  }

  private async cancel(records: PilotJobRow[], reason: string): Promise<void> {
    const targets = records.filter((r) => r.batchId !== null && r.cancelReason === null);
    if (targets.length === 0) return;
    await this.deps.batch.cancel(targets.map((r) => r.batchId!));
    for (const record of targets) {
      const { pilotJob } = await this.put(
        record.id,
        { type: "cancel.requested", reason },
        `${record.id}:cancel`,
      );
      this.records.set(record.id, pilotJob);
    }
    this.deps.log.info({ queue: this.name, cancelled: targets.map((r) => r.batchId), reason }, "cancelled");
  }

  private async submitOne(nowMs: number): Promise<void> {
    const { queue, factory, batch, client } = this.deps;
    const id = newPilotJobId(factory.name, queue.name);
    const created = await this.put(id, undefined);
    this.records.set(id, created.pilotJob);
    const ttlSec = queue.maxQueueWaitSec + queue.walltimeSec + TOKEN_SLACK_SEC;
    const [{ token }, target] = await Promise.all([
      client.mintPilotToken(queue.site, id, ttlSec),
      this.deps.launchTarget(),
    ]);
    let batchId: string;
    try {
      batchId = await batch.submit({
        pilotJobId: id,
        argv: pilotArgv(target, queue),
        env: { [TOKEN_ENV]: token },
        copies: queue.pilotsPerJob,
        partition: queue.partition ?? null,
        walltimeSec: queue.walltimeSec,
        cores: queue.cores,
        memoryMb: queue.memoryMb,
        workdir: this.workdirOf(id),
        logPath: join(factory.stateDir, "logs", queue.name, `${id}.log`),
      });
    } catch (err) {
      const reason = `the batch system refused it: ${(err as Error).message}`;
      await this.put(id, { type: "lost", reason }, `${id}:end`);
      this.records.delete(id);
      throw new Error(`submitting to ${batch.kind}: ${(err as Error).message}`);
    }
    this.throttle.recordSubmission(nowMs);
    const { pilotJob } = await this.put(id, { type: "submitted", batchId }, `${id}:submitted`);
    this.records.set(id, pilotJob);
    this.deps.log.info({ queue: queue.name, pilotJob: id, batchId }, "submitted");
  }

  private workdirOf(pilotJobId: string): string {
    return join(this.deps.factory.stateDir, "work", this.deps.queue.name, pilotJobId);
  }

  private put(id: string, event: Record<string, unknown> | undefined, eventId?: string) {
    const { queue, factory, batch } = this.deps;
    return this.deps.client.putPilotJob(id, {
      record: {
        factory: factory.name,
        queue: queue.name,
        site: queue.site,
        batchSystem: batch.kind,
        pilots: queue.pilotsPerJob,
      },
      ...(event ? { event } : {}),
      ...(eventId ? { eventId } : {}),
    });
  }
}
