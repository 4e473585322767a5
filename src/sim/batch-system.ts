/**
 * One batch partition of a site with its pilot factory. The factory submits
 * pilots as a Poisson process at the configured rate while fewer than
 * `maxQueued` wait; a waiting pilot gets a slot when one is free, says hello
 * after its start-up latency, and gives the slot back when it exits (lifetime
 * over, idle) or its node dies. Under oneInN every N-th pilot started serves
 * the analysis queue instead of the production one.
 */
import { sample } from "./distribution.js";
import type { RandomStream } from "./random.js";
import type { Strategy } from "./scenario.js";
import { type PilotEnvironment, SimPilot } from "./sim-pilot.js";
import type { SlotMeter } from "./time-integral.js";
import type { Partition, PhysicalSite } from "./topology.js";

export class BatchPartition {
  private waiting = 0;
  private used = 0;
  private started = 0;
  private down = false;
  private readonly live = new Set<SimPilot>();

  constructor(
    private readonly partition: Partition,
    private readonly site: PhysicalSite,
    private readonly meter: SlotMeter,
    private readonly env: PilotEnvironment,
    private readonly strategy: Strategy,
    private readonly random: RandomStream,
  ) {}

  /** Starts the factory; the first pilots arrive at the configured pace from time zero. */
  start(): void {
    this.scheduleArrival();
  }

  get pilots(): number {
    return this.live.size;
  }

  get queuedPilots(): number {
    return this.waiting;
  }

  private scheduleArrival(): void {
    const { clock } = this.env;
    const rate = this.partition.ratePerHour;
    if (rate <= 0) return;
    clock.at(clock.nowMs() + this.random.exponential(3_600_000 / rate), () => {
      if (!this.down && this.waiting < this.site.config.pilots.maxQueued) {
        this.waiting++;
        this.fill();
      }
      this.scheduleArrival();
    });
  }

  private fill(): void {
    while (!this.down && this.waiting > 0 && this.used < this.partition.slots) {
      this.waiting--;
      this.used++;
      this.meter.occupied.add(1, this.env.clock.nowMs());
      this.launch();
    }
  }

  private launch(): void {
    const { clock } = this.env;
    const config = this.site.config.pilots;
    this.started++;
    const every = this.partition.analysisEvery;
    const queue =
      every !== null && this.partition.analysisQueue && this.started % every === 0
        ? this.partition.analysisQueue
        : this.partition.queue;
    const startupMs = sample(config.startupLatency, this.random);
    const lifetimeMs = sample(config.lifetime, this.random);
    const pilotId = `${queue.name}.${this.started}`;
    clock.at(clock.nowMs() + startupMs, () => {
      if (this.down) {
        this.slotFreed();
        return;
      }
      const pilot: SimPilot = new SimPilot(this.env, {
        pilotId,
        queue: queue.name,
        site: this.site,
        meter: this.meter,
        multitask: queue.multitask,
        lifetimeMs,
        slowdown: this.strategy.multitask.slowdown,
        onGone: () => {
          this.live.delete(pilot);
          this.slotFreed();
        },
      });
      this.live.add(pilot);
      pilot.start();
    });
  }

  private slotFreed(): void {
    this.used--;
    this.meter.occupied.add(-1, this.env.clock.nowMs());
    this.fill();
  }

  /** The site goes down: every node dies with its pilot, nothing queued survives, the factory pauses. */
  outageStarts(): void {
    this.down = true;
    this.waiting = 0;
    for (const pilot of [...this.live]) pilot.die();
  }

  outageEnds(): void {
    this.down = false;
  }
}
