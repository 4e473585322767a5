// `panda factory` as an object: one agent per queue, polled in turn, each reporting its state to the server.
import { hostname } from "node:os";
import { join } from "node:path";
import { PandaClient } from "../cli/client.js";
import type { Logger } from "../runtime/logger.js";
import { BUNDLE_CHECKSUM_HEADER, PILOT_BUNDLE_ROUTE } from "../server/pilot-bundle.js";
import type { BatchSystem } from "./batch-system.js";
import { type FactoryConfig, type QueueConfig, readQueueToken } from "./config.js";
import { LocalBatchSystem } from "./local-batch.js";
import type { LaunchTarget } from "./pilot-launch.js";
import { QueueAgent } from "./queue-agent.js";
import { SlurmBatchSystem } from "./slurm-batch.js";

export interface FactoryOptions {
  log: Logger;
  /** Another batch system for a queue (tests); the configured one otherwise. */
  batchFor?: (queue: QueueConfig) => BatchSystem;
}

function batchSystemFor(config: FactoryConfig, queue: QueueConfig): BatchSystem {
  if (queue.batchSystem === "slurm")
    return new SlurmBatchSystem({ namePrefix: `${config.name}.${queue.name}.`, extraArgs: queue.sbatchArgs });
  return new LocalBatchSystem({ stateDir: join(config.stateDir, "local", queue.name) });
}

/**
 * Polls every queue each `pollSeconds`: reconcile, read demand, submit or
 * cancel, report. Stopping leaves the batch jobs running: a restarted
 * factory adopts them from their records.
 */
export class PilotFactory {
  private readonly agents: QueueAgent[];
  private readonly clients = new Map<string, PandaClient>();
  private readonly startedAtMs = Date.now();
  private stopping = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly config: FactoryConfig,
    private readonly options: FactoryOptions,
  ) {
    this.agents = config.queues.map(
      (queue) =>
        new QueueAgent({
          factory: config,
          queue,
          client: this.clientFor(queue),
          batch: options.batchFor?.(queue) ?? batchSystemFor(config, queue),
          launchTarget: () => this.launchTarget(),
          log: options.log,
        }),
    );
  }

  /** Adopts what earlier runs left (live records, throttles), then polls until `stop()`. */
  async start(): Promise<void> {
    const nowMs = Date.now();
    for (const [i, agent] of this.agents.entries()) {
      const client = this.clientFor(this.config.queues[i]!);
      const last = await client.getFactory(this.config.name).catch(() => null);
      const lastQueue = last?.queues.find((q) => q.name === agent.name);
      const adopted = await agent.adopt(lastQueue?.throttle ?? null, nowMs);
      this.options.log.info({ queue: agent.name, adopted }, "queue ready");
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** One pass over every queue: what the loop does each poll, callable from tests. */
  async pollOnce(): Promise<void> {
    for (const [i, agent] of this.agents.entries()) {
      const nowMs = Date.now();
      await agent.poll(nowMs);
      const report = {
        host: hostname(),
        pid: process.pid,
        startedAtMs: this.startedAtMs,
        pollSeconds: this.config.pollSeconds,
        queue: agent.report(Date.now()),
      };
      await this.clientFor(this.config.queues[i]!)
        .reportFactoryQueue(this.config.name, report)
        .catch((err: unknown) =>
          this.options.log.warn({ queue: agent.name, err: (err as Error).message }, "report not sent"),
        );
    }
  }

  queueAgents(): readonly QueueAgent[] {
    return this.agents;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.pollOnce();
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.config.pollSeconds * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private clientFor(queue: QueueConfig): PandaClient {
    const token = readQueueToken(this.config, queue);
    let client = this.clients.get(token);
    if (!client) {
      client = new PandaClient({
        server: this.config.server,
        token,
        serverSource: "the factory configuration",
      });
      this.clients.set(token, client);
    }
    return client;
  }

  /** The bundle's checksum as the server has it now: asked per submission, so a server upgrade is picked up at once. */
  private async launchTarget(): Promise<LaunchTarget> {
    const url = `${this.config.server.replace(/\/+$/, "")}${PILOT_BUNDLE_ROUTE}`;
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(30_000) });
    const checksum = res.headers.get(BUNDLE_CHECKSUM_HEADER);
    if (!res.ok || !checksum)
      throw new Error(`the server has no pilot bundle at ${url} (HTTP ${res.status})`);
    return { node: this.config.node, server: this.config.pilotServer ?? this.config.server, checksum };
  }
}
