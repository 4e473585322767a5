import { isRuntimeError } from "../../src/runtime/errors.js";
import { queueNames } from "../../src/store/queue-index.js";
import { checksumOfBytes } from "../../src/transfer/checksum.js";
import type { Grid } from "../../src/workload/grid.js";

export type PilotBehaviour =
  | { kind: "finish" }
  | { kind: "fail"; errorClass: "payload" | "pilot" | "stagein"; exitCode: number }
  /** Takes jobs and keeps them running until `finishHeld` is called. */
  | { kind: "hold" };

/**
 * Pilots driven at the level of job events, without processes or sockets: it
 * takes activated jobs from a site's queue as soon as they arrive, up to the
 * site's slots, and plays the pilot's reports for each. Used to test the
 * workload's data flow, brokerage and retries in isolation from the gateway.
 */
export class FakePilots {
  private readonly running = new Map<string, number>();
  private readonly held = new Map<string, string[]>();
  /** Jobs taken from a queue and not dispatched yet: the queue still shows them until their dispatch commits. */
  private readonly taking = new Set<string>();
  private readonly stop: () => void;

  constructor(
    private readonly grid: Grid,
    private readonly sites: Record<string, { slots: number; behaviour: PilotBehaviour }>,
  ) {
    grid.setPilotCounter((site) => (this.sites[site] ? 1 : 0));
    // A job queued on the grid's shards (its commit landed): take it if a slot is free.
    this.stop = grid.runtime.local.onChange((key, _member, score) => {
      const site = Object.keys(this.sites).find((s) => key.startsWith(`site-queue:${s}:`));
      if (score !== null && site) void this.fill(site);
    });
  }

  close(): void {
    this.stop();
  }

  /** Jobs each site ran, by job id. */
  readonly ran = new Map<string, string[]>();

  private async fill(site: string): Promise<void> {
    const config = this.sites[site];
    if (!config) return;
    while ((this.running.get(site) ?? 0) < config.slots) {
      const next = this.head(site, "production") ?? this.head(site, "analysis");
      if (!next) return;
      this.taking.add(next);
      this.running.set(site, (this.running.get(site) ?? 0) + 1);
      // A job still being played when the test stops its grid: the runtime refuses with STOPPED, which ends it.
      void this.run(site, next, config.behaviour)
        .catch((err: unknown) => {
          if (!(isRuntimeError(err) && err.code === "STOPPED")) throw err;
        })
        .finally(() => this.taking.delete(next));
    }
  }

  /** The first job of a site's queues (every shard is the grid's own; shares in configuration order) not being taken already. */
  private head(site: string, lane: "production" | "analysis"): string | null {
    let found: string | null = null;
    for (const share of this.grid.ctx.settings.queueShares) {
      this.grid.runtime.local.scan(queueNames.siteQueue(site, lane, share), (member) => {
        if (this.taking.has(member)) return true;
        found = member;
        return false;
      });
      if (found !== null) return found;
    }
    return found;
  }

  private async run(site: string, jobId: string, behaviour: PilotBehaviour): Promise<void> {
    const ref = { kind: "job", id: jobId };
    const attempt = Number(jobId.slice(jobId.lastIndexOf(".") + 1));
    const pilotId = `fake-${site}`;
    const send = (event: object) =>
      this.grid.runtime.send(ref, { ...event, atMs: this.grid.runtime.clock.nowMs() });
    try {
      await send({ type: "dispatch", pilotId, thread: "primary" });
    } catch {
      // Killed or moved on while queued: a real pilot would never have seen it.
      this.release(site);
      return;
    }
    this.ran.set(site, [...(this.ran.get(site) ?? []), jobId]);
    await send({ type: "pilot.starting", pilotId, attempt });
    await send({ type: "pilot.running", pilotId, attempt });
    if (behaviour.kind === "hold") {
      this.held.set(site, [...(this.held.get(site) ?? []), jobId]);
      return;
    }
    await this.end(site, jobId, behaviour);
  }

  private async end(site: string, jobId: string, behaviour: PilotBehaviour): Promise<void> {
    const attempt = Number(jobId.slice(jobId.lastIndexOf(".") + 1));
    const output = Buffer.from(`output of ${jobId}`);
    const ended =
      behaviour.kind === "fail"
        ? {
            exitCode: behaviour.exitCode,
            errorClass: behaviour.errorClass,
            errorMessage: "payload failed",
            outputs: [],
          }
        : {
            exitCode: 0,
            outputs: [{ lfn: `${jobId}.out`, sizeBytes: output.length, checksum: checksumOfBytes(output) }],
          };
    await this.grid.runtime.send(
      { kind: "job", id: jobId },
      {
        type: "pilot.ended",
        pilotId: `fake-${site}`,
        attempt,
        ...ended,
        atMs: this.grid.runtime.clock.nowMs(),
      },
    );
    this.release(site);
  }

  private release(site: string): void {
    this.running.set(site, (this.running.get(site) ?? 1) - 1);
    void this.fill(site);
  }

  /** Ends the oldest held job of a site successfully. */
  async finishHeld(site: string): Promise<string | undefined> {
    const jobs = this.held.get(site) ?? [];
    const jobId = jobs.shift();
    if (jobId) await this.end(site, jobId, { kind: "finish" });
    return jobId;
  }
}
