import { describe, expect, it } from "vitest";
import type { JobContext, JobState } from "../../src/actors/job/schema.js";
import type { CommittedTransition } from "../../src/runtime/shard-host.js";
import { InvariantMonitor } from "../../src/sim/invariants.js";
import { JobTracker } from "../../src/sim/job-tracker.js";
import { RandomStream, SimRandom } from "../../src/sim/random.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";

describe("virtual clock", () => {
  it("runs events in (time, scheduling order), moves only when told, and skips cancelled ones", () => {
    const clock = new VirtualClock(1000);
    const ran: string[] = [];
    clock.at(3000, () => ran.push("c"));
    clock.at(2000, () => ran.push("a"));
    const cancelled = clock.at(2000, () => ran.push("x"));
    clock.at(2000, () => {
      ran.push("b");
      clock.setTimer(() => ran.push("b+0"), 0);
    });
    clock.cancel(cancelled);
    expect(clock.nextDueMs()).toBe(2000);
    clock.advanceTo(2000);
    clock.runDue();
    expect(ran).toEqual(["a", "b", "b+0"]);
    expect(clock.nowMs()).toBe(2000);
    clock.advanceTo(clock.nextDueMs()!);
    clock.runDue();
    expect(ran).toEqual(["a", "b", "b+0", "c"]);
    expect(clock.nextDueMs()).toBeNull();
  });

  it("keeps (time, scheduling order) across many instants, with cancels and events added while running", () => {
    // A reference: every event sorted by (time, sequence number), cancelled ones left out.
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const clock = new VirtualClock(0, 10);
    const ran: number[] = [];
    const scheduled: { atMs: number; id: number; cancelled: boolean }[] = [];
    const handles: ReturnType<VirtualClock["at"]>[] = [];
    let nextId = 0;
    const schedule = (atMs: number) => {
      const id = nextId++;
      const entry = { atMs: Math.ceil(atMs / 10) * 10, id, cancelled: false };
      scheduled.push(entry);
      handles.push(clock.at(atMs, () => ran.push(id)));
    };
    for (let i = 0; i < 500; i++) schedule(random() * 2000);
    for (let i = 0; i < 100; i++) {
      const k = Math.floor(random() * handles.length);
      clock.cancel(handles[k]!);
      scheduled[k]!.cancelled = true;
    }
    for (let next = clock.nextDueMs(); next !== null; next = clock.nextDueMs()) {
      clock.advanceTo(next);
      // What runs at an instant may schedule more for that instant and later ones.
      if (random() < 0.3) schedule(next);
      if (random() < 0.3) schedule(next + random() * 500);
      clock.runDue();
    }
    const expected = scheduled
      .filter((e) => !e.cancelled)
      .sort((a, b) => a.atMs - b.atMs || a.id - b.id)
      .map((e) => e.id);
    expect(ran).toEqual(expected);
    expect(clock.pending).toBe(0);
  });

  it("puts events on its resolution grid, rounding up", () => {
    const clock = new VirtualClock(0, 1000);
    clock.at(1, () => {});
    expect(clock.nextDueMs()).toBe(1000);
  });
});

describe("seeded randomness", () => {
  it("gives the same numbers for the same seed and label, independent streams per label", () => {
    const a = new RandomStream(42, "pilots:A");
    const b = new RandomStream(42, "pilots:A");
    const draws = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(draws);
    expect(new RandomStream(42, "pilots:B").next()).not.toBe(draws[0]);
    expect(new RandomStream(43, "pilots:A").next()).not.toBe(draws[0]);
    const root = new SimRandom(42);
    expect(root.stream("x")).toBe(root.stream("x"));
    const uniform = new RandomStream(1, "u");
    let mean = 0;
    for (let i = 0; i < 10_000; i++) mean += uniform.next() / 10_000;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
  });
});

function jobTransition(
  jobId: string,
  state: JobState,
  pilot: JobContext["pilot"],
  at: number,
): CommittedTransition {
  const [taskPart, attempt] = jobId.split(".");
  const dash = taskPart!.lastIndexOf("-");
  const context = {
    jobId,
    taskId: taskPart!.slice(0, dash),
    index: Number(taskPart!.slice(dash + 1)),
    attempt: Number(attempt),
    type: "production",
    site: "A",
    pilot,
    error: null,
    timestamps: {},
  } as unknown as JobContext;
  return {
    actor: `job/${jobId}`,
    entry: { v: 1, at, id: "e", event: { type: "x" }, from: null, to: String(state), cause: "test" },
    state: { value: state, context } as CommittedTransition["state"],
  };
}

describe("invariant checks", () => {
  it("catch a thread that the job actors bind to two jobs", () => {
    const tracker = new JobTracker();
    tracker.registerTask("t", { type: "production", submittedAtMs: 0 });
    const monitor = new InvariantMonitor(tracker, () => 5, 1000);
    monitor.pilotStarted("p1");
    const pilot = { pilotId: "p1", thread: "primary" as const };
    tracker.observe([jobTransition("t-0.1", "defined", null, 0), jobTransition("t-1.1", "defined", null, 0)]);
    monitor.take("p1", "primary", "t-0.1");
    tracker.observe([jobTransition("t-0.1", "sent", pilot, 1), jobTransition("t-1.1", "sent", pilot, 2)]);
    monitor.afterDrain();
    expect(monitor.violation?.invariant).toBe("oneJobPerThread");
    expect(monitor.violation?.actor).toEqual({ kind: "job", id: "t-1.1" });
  });

  it("catch a job pushed to a second pilot, and a job bound to a pilot that does not run it", () => {
    const tracker = new JobTracker();
    tracker.registerTask("t", { type: "production", submittedAtMs: 0 });
    const twice = new InvariantMonitor(tracker, () => 5, 1000);
    twice.take("p1", "primary", "t-0.1");
    twice.take("p2", "primary", "t-0.1");
    expect(twice.violation?.invariant).toBe("oneJobOnePilot");

    const orphan = new InvariantMonitor(tracker, () => 5, 1000);
    orphan.pilotStarted("p3");
    tracker.observe([
      jobTransition("t-2.1", "defined", null, 0),
      jobTransition("t-2.1", "running", { pilotId: "p3", thread: "primary" }, 1),
    ]);
    orphan.afterDrain();
    expect(orphan.violation?.invariant).toBe("livePilot");
  });

  it("let a lost pilot's jobs go, and only its own", () => {
    const tracker = new JobTracker();
    const monitor = new InvariantMonitor(tracker, () => 5, 1000);
    monitor.take("p1", "primary", "t-0.1");
    monitor.take("p1", "secondary", "t-1.1");
    monitor.take("p2", "primary", "t-2.1");
    monitor.pilotDied("p1");
    // Another pilot may now take the lost pilot's jobs; the live pilot's job is still held.
    monitor.take("p3", "primary", "t-0.1");
    monitor.take("p3", "secondary", "t-1.1");
    expect(monitor.violation).toBeNull();
    monitor.take("p4", "primary", "t-2.1");
    expect(monitor.violation?.invariant).toBe("oneJobOnePilot");
  });

  it("catch jobs that are not conserved", () => {
    const tracker = new JobTracker();
    tracker.registerTask("t", { type: "production", submittedAtMs: 0 });
    tracker.observe([jobTransition("t-0.1", "defined", null, 0)]);
    const monitor = new InvariantMonitor(tracker, () => 5, 1000);
    monitor.checkConservation(1);
    expect(monitor.violation).toBeNull();
    monitor.checkConservation(2);
    expect(monitor.violation?.invariant).toBe("conservation");
    expect(monitor.violation?.detail).toContain("submitted 2 jobs");
  });
});
