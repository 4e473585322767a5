import { afterEach, describe, expect, it, vi } from "vitest";
import { runVariant, SIM_EPOCH_MS } from "../../src/sim/harness.js";
import { InvariantMonitor, InvariantViolationError } from "../../src/sim/invariants.js";
import { parseScenario } from "../../src/sim/scenario.js";
import { smallScenario } from "./small-scenario.js";

const BREACH_AFTER_MS = 3_600_000;

interface MonitorInside {
  nowMs(): number;
  livePilots: Set<string>;
  tracker: { jobsOnPilot(pilotId: string): Iterable<string> };
}

/** The first job a live pilot holds: the same one in every run of a seed. */
function aRunningJob(monitor: MonitorInside): string | null {
  for (const pilotId of monitor.livePilots)
    for (const jobId of monitor.tracker.jobsOnPilot(pilotId)) return jobId;
  return null;
}

/**
 * Makes every run's monitor (or only the first's) report a breach on a job a
 * pilot runs, at the first settled instant an hour in, as a real invariant
 * would. Returns the job each breaking run named, one per run.
 */
function breakAnHourIn(options: { onlyFirstRun: boolean }): Map<InvariantMonitor, string> {
  const breaking = new Map<InvariantMonitor, string>();
  const seen = new Set<InvariantMonitor>();
  const afterDrain = InvariantMonitor.prototype.afterDrain;
  vi.spyOn(InvariantMonitor.prototype, "afterDrain").mockImplementation(function (this: InvariantMonitor) {
    afterDrain.call(this);
    seen.add(this);
    if (options.onlyFirstRun && seen.size > 1) return;
    const inside = this as unknown as MonitorInside;
    if (inside.nowMs() - SIM_EPOCH_MS < BREACH_AFTER_MS) return;
    const jobId = aRunningJob(inside);
    if (!jobId) return;
    breaking.set(this, jobId);
    this.fail({
      invariant: "conservation",
      actor: { kind: "job", id: jobId },
      detail: "breached by the test",
    });
  });
  return breaking;
}

function run(keepHistory?: boolean) {
  const scenario = parseScenario(smallScenario());
  return runVariant({
    scenario,
    variant: scenario.variants[0]!,
    seed: 5,
    durationMs: 2 * 3_600_000,
    ...(keepHistory === undefined ? {} : { keepHistory }),
  });
}

async function breachOf(running: Promise<unknown>): Promise<InvariantViolationError> {
  const err = await running.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvariantViolationError);
  return err as InvariantViolationError;
}

describe("a breach in a run that keeps no history", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("replays the run with history kept and reports the offending actor's transitions", async () => {
    const breaking = breakAnHourIn({ onlyFirstRun: false });
    const breach = await breachOf(run());
    const [first, replayed] = [...breaking.values()];
    expect(breaking.size).toBe(2);
    expect(replayed).toBe(first);
    expect(breach.violation.actor).toEqual({ kind: "job", id: first });
    expect(breach.violation.atMs).toBeGreaterThanOrEqual(BREACH_AFTER_MS);
    expect(breach.history).toContain(`job/${first} is running`);
    expect(breach.history).toMatch(/v1 create: \(new\) -> /);
    expect(breach.history).toMatch(/ brokered: /);
    expect(breach.history).toMatch(/ pilot\.running pilot=/);
    expect(breach.message).toContain("breached by the test");
  });

  it("does not replay a run that kept its history", async () => {
    const breaking = breakAnHourIn({ onlyFirstRun: false });
    const breach = await breachOf(run(true));
    expect(breaking.size).toBe(1);
    expect(breach.history).toMatch(/v1 create: \(new\) -> /);
  });

  it("says so when the replay does not break the same way", async () => {
    const breaking = breakAnHourIn({ onlyFirstRun: true });
    const breach = await breachOf(run());
    expect(breaking.size).toBe(1);
    expect(breach.violation.actor).toEqual({ kind: "job", id: [...breaking.values()][0] });
    expect(breach.history).toContain("a replay of the run with history kept did not break the same way");
  });
});
