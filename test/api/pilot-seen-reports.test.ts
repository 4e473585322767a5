import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/runtime/logger.js";
import type { Runtime } from "../../src/runtime/runtime.js";
import { PilotSeenReports } from "../../src/server/pilot-seen-reports.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";

function recordingRuntime(clock: VirtualClock) {
  const sent: { site: string; event: Record<string, unknown> }[] = [];
  const runtime = {
    clock,
    send: async (ref: { kind: string; id: string }, event: Record<string, unknown>) => {
      sent.push({ site: `${ref.kind}/${ref.id}`, event });
      return { outcome: "committed" };
    },
  } as unknown as Runtime;
  return { runtime, sent };
}

function at(clock: VirtualClock, atMs: number): void {
  clock.advanceTo(atMs);
  clock.runDue();
}

describe("pilot requests told to their site", () => {
  it("tells the first at once and those that follow within the flush period together, as their count", () => {
    const clock = new VirtualClock(0);
    const { runtime, sent } = recordingRuntime(clock);
    const reports = new PilotSeenReports(runtime, silentLogger, 15_000);
    reports.note("BNL", "p-1");
    expect(sent).toEqual([{ site: "site/BNL", event: { type: "pilot.seen", pilotId: "p-1", atMs: 0 } }]);
    at(clock, 1_000);
    reports.note("BNL", "p-2");
    at(clock, 9_000);
    reports.note("BNL", "p-3");
    reports.note("CERN", "p-4");
    at(clock, 14_999);
    expect(sent).toHaveLength(2);
    at(clock, 15_000);
    expect(sent.slice(1)).toEqual([
      { site: "site/CERN", event: { type: "pilot.seen", pilotId: "p-4", atMs: 9_000 } },
      { site: "site/BNL", event: { type: "pilot.seen", pilotId: "p-3", requests: 2, atMs: 15_000 } },
    ]);
    // Quiet for a flush period: the next request is told at once again.
    at(clock, 40_000);
    reports.note("BNL", "p-5");
    expect(sent.at(-1)).toEqual({
      site: "site/BNL",
      event: { type: "pilot.seen", pilotId: "p-5", atMs: 40_000 },
    });
    expect(sent).toHaveLength(4);
  });

  it("tells nothing more once closed", () => {
    const clock = new VirtualClock(0);
    const { runtime, sent } = recordingRuntime(clock);
    const reports = new PilotSeenReports(runtime, silentLogger, 15_000);
    reports.note("BNL", "p-1");
    reports.note("BNL", "p-2");
    reports.close();
    at(clock, 60_000);
    reports.note("BNL", "p-3");
    expect(sent).toHaveLength(1);
  });
});
