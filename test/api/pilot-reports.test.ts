import { describe, expect, it } from "vitest";
import { GatewayRefusal, type PilotSession } from "../../src/gateway/handlers.js";
import { RuntimeError } from "../../src/runtime/errors.js";
import { PilotReports } from "../../src/server/pilot-reports.js";
import type { Grid } from "../../src/workload/grid.js";

/** A grid whose runtime answers each send with the next of `answers` (an error to reject with, or null to commit). */
function gridAnswering(answers: (RuntimeError | null)[]) {
  const sent: string[] = [];
  const grid = {
    runtime: {
      send: async (_ref: unknown, _event: unknown, options: { eventId: string }) => {
        sent.push(options.eventId);
        const answer = answers.shift() ?? null;
        if (answer) throw answer;
        return { outcome: "queued" };
      },
    },
  } as unknown as Grid;
  return { grid, sent };
}

const session = { pilotId: "p-1" } as PilotSession;
const report = { type: "job.ended", id: 7, jobId: "t-1-0.1", attempt: 1 } as never;
const event = { type: "pilot.ended", pilotId: "p-1", attempt: 1, atMs: 1 };

describe("a pilot's report whose delivery fails without an answer about the report", () => {
  it("is sent again, with the same event id, when the job's shard moved to another node under the send", async () => {
    const { grid, sent } = gridAnswering([
      new RuntimeError("SHARD_LOST", "shard 46 was taken by another node"),
    ]);
    await new PilotReports(grid).report(session, report, event);
    expect(sent).toEqual(["pilot:p-1:t-1-0.1:7", "pilot:p-1:t-1-0.1:7"]);
  });

  it("is answered with the delivery's error, which the pilot resends on, never with a refusal it drops the report for", async () => {
    const lost = () => new RuntimeError("SHARD_LOST", "shard 46 was taken by another node");
    const { grid, sent } = gridAnswering([lost(), lost(), lost(), lost()]);
    const answer = await new PilotReports(grid).report(session, report, event).catch((err: unknown) => err);
    expect(answer).toBeInstanceOf(RuntimeError);
    expect(answer).not.toBeInstanceOf(GatewayRefusal);
    expect(sent).toHaveLength(3);
    const { grid: stopping } = gridAnswering([new RuntimeError("STOPPED", "runtime is not running")]);
    expect(
      await new PilotReports(stopping).report(session, report, event).catch((err: unknown) => err),
    ).toMatchObject({
      code: "STOPPED",
    });
  });
});
