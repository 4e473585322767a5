import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/runtime/logger.js";
import type { Runtime } from "../../src/runtime/runtime.js";
import { HeartbeatLedger } from "../../src/server/heartbeat-ledger.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";

const TIMEOUT_MS = 600_000;
const BEAT_MS = 30_000;

/**
 * A runtime hosting one running job, as the ledger sees it: its committed
 * state, and sends that commit a heartbeat the way the job machine does
 * (its stamp becomes the beat's time, which re-arms the watchdog).
 */
function hostedJob(clock: VirtualClock, state: { value: string; pilotId: string; attempt: number }) {
  const job = {
    value: state.value,
    lastAtMs: clock.nowMs(),
    pilotId: state.pilotId,
    attempt: state.attempt,
  };
  const committed: { atMs: number; eventId: string; sentAtMs: number; heldMs?: number }[] = [];
  const runtime = {
    clock,
    residentState: () => ({
      status: "active",
      value: job.value,
      context: {
        lastAtMs: job.lastAtMs,
        pilot: { pilotId: job.pilotId },
        attempt: job.attempt,
        watchdogs: { heartbeatTimeoutMs: TIMEOUT_MS },
      },
    }),
    send: async (_ref: unknown, event: { atMs: number; heldMs?: number }, options: { eventId: string }) => {
      committed.push({
        atMs: event.atMs,
        eventId: options.eventId,
        sentAtMs: clock.nowMs(),
        ...(event.heldMs !== undefined ? { heldMs: event.heldMs } : {}),
      });
      job.lastAtMs = event.atMs;
      return { outcome: "committed" };
    },
  } as unknown as Runtime;
  return { runtime, job, committed };
}

/** The pilot's beat at `atMs`: held, or committed as a report is (here: the stand-in's send). */
function beat(
  ledger: HeartbeatLedger,
  hosted: ReturnType<typeof hostedJob>,
  clock: VirtualClock,
  atMs: number,
  pilotId = "p-1",
): boolean {
  clock.advanceTo(atMs);
  clock.runDue();
  const eventId = `pilot:${pilotId}:job-1:${atMs}`;
  const held = ledger.hold({ jobId: "job-1", pilotId, attempt: 1, atMs, eventId });
  if (!held) void hosted.runtime.send(null as never, { atMs } as never, { eventId } as never);
  return held;
}

describe("a running job's heartbeats", () => {
  it("are committed once per half timeout while its pilot beats, not one by one", () => {
    const clock = new VirtualClock(0);
    const hosted = hostedJob(clock, { value: "running", pilotId: "p-1", attempt: 1 });
    const ledger = new HeartbeatLedger(hosted.runtime, silentLogger);
    let held = 0;
    for (let atMs = BEAT_MS; atMs <= 3_600_000; atMs += BEAT_MS)
      if (beat(ledger, hosted, clock, atMs)) held++;
    // 120 beats in an hour; one in ten finds the committed one half a timeout old.
    expect(hosted.committed.map((c) => c.atMs)).toEqual([
      300_000, 600_000, 900_000, 1_200_000, 1_500_000, 1_800_000, 2_100_000, 2_400_000, 2_700_000, 3_000_000,
      3_300_000, 3_600_000,
    ]);
    expect(held).toBe(108);
    // Between any two commits the watchdog (a timeout after the last) never came near.
    const stamps = [0, ...hosted.committed.map((c) => c.atMs)];
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]! - stamps[i - 1]!).toBeLessThan(TIMEOUT_MS);
  });

  it("of a pilot gone silent: the last one heard is committed before the watchdog, so it counts from it", () => {
    const clock = new VirtualClock(0);
    const hosted = hostedJob(clock, { value: "running", pilotId: "p-1", attempt: 1 });
    const ledger = new HeartbeatLedger(hosted.runtime, silentLogger);
    for (let atMs = BEAT_MS; atMs <= 120_000; atMs += BEAT_MS)
      expect(beat(ledger, hosted, clock, atMs)).toBe(true);
    // Silence. At three quarters of the timeout after the committed stamp (0), the beat of 120 s commits.
    clock.advanceTo(449_999);
    clock.runDue();
    expect(hosted.committed).toEqual([]);
    clock.advanceTo(450_000);
    clock.runDue();
    // With how long it was held: the job arms its watchdog for 120 s + timeout, as if every beat had been committed.
    expect(hosted.committed).toEqual([
      { atMs: 120_000, eventId: "pilot:p-1:job-1:120000", sentAtMs: 450_000, heldMs: 330_000 },
    ]);
    expect(hosted.committed[0]!.sentAtMs + TIMEOUT_MS - hosted.committed[0]!.heldMs!).toBe(720_000);
    expect(ledger.size).toBe(0);
  });

  it("are not held for a job that left the pilot, another pilot's, or a job this node does not host", () => {
    const clock = new VirtualClock(0);
    const hosted = hostedJob(clock, { value: "running", pilotId: "p-1", attempt: 1 });
    const ledger = new HeartbeatLedger(hosted.runtime, silentLogger);
    expect(beat(ledger, hosted, clock, BEAT_MS, "p-2")).toBe(false);
    expect(beat(ledger, hosted, clock, 2 * BEAT_MS)).toBe(true);
    // The job moved on (it ended) before the held beat came due: nothing is committed for it.
    hosted.job.value = "holding";
    clock.advanceTo(TIMEOUT_MS);
    clock.runDue();
    expect(hosted.committed.map((c) => c.eventId)).toEqual(["pilot:p-2:job-1:30000"]);
    expect(ledger.size).toBe(0);
    const nowhere = { ...hosted.runtime, residentState: () => undefined } as unknown as Runtime;
    expect(
      new HeartbeatLedger(nowhere, silentLogger).hold({
        jobId: "job-1",
        pilotId: "p-1",
        attempt: 1,
        atMs: TIMEOUT_MS,
        eventId: "e",
      }),
    ).toBe(false);
  });

  it("held beat is dropped once a later one was committed", () => {
    const clock = new VirtualClock(0);
    const hosted = hostedJob(clock, { value: "running", pilotId: "p-1", attempt: 1 });
    const ledger = new HeartbeatLedger(hosted.runtime, silentLogger);
    expect(beat(ledger, hosted, clock, 200_000)).toBe(true);
    expect(beat(ledger, hosted, clock, 310_000)).toBe(false);
    clock.advanceTo(450_000);
    clock.runDue();
    expect(hosted.committed.map((c) => c.atMs)).toEqual([310_000]);
    // The next beat is held against the new stamp, and comes due three quarters of a timeout after it.
    expect(beat(ledger, hosted, clock, 340_000)).toBe(true);
    clock.advanceTo(310_000 + 450_000);
    clock.runDue();
    expect(hosted.committed.map((c) => c.atMs)).toEqual([310_000, 340_000]);
  });
});
