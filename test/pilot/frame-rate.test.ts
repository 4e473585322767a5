/**
 * The server's frame limit, seen from the pilot: it paces its frames under
 * the rate the welcome announced, and what the server drops unread anyway
 * (a ready, a report) it says again. A ready lost for good would leave a
 * free thread that is never offered work.
 */
import { describe, expect, it } from "vitest";
import type { PilotMessage } from "../../src/protocol/messages.js";
import { usePilotFixture } from "./pilot-process.js";

const startPilot = usePilotFixture();

/** Drops the first frame of this type unread (RATE_LIMITED), and none after it. */
function dropFirst(type: PilotMessage["type"]): (frame: PilotMessage) => boolean {
  let dropped = false;
  return (frame) => {
    if (frame.type !== type || dropped) return false;
    dropped = true;
    return true;
  };
}

describe("pilot frame rate", () => {
  it("says pilot.ready again after the server dropped it unread, and then takes work", async () => {
    const { server, pilot } = await startPilot({
      // Long heartbeats: whatever comes again comes from the RATE_LIMITED answer, not a heartbeat's resend.
      server: { heartbeatMs: 60_000, dropUnread: dropFirst("pilot.ready") },
    });
    const ready = await server.waitFor("pilot.ready");
    expect(server.droppedUnread.map((frame) => frame.type)).toEqual(["pilot.ready"]);
    expect(ready.thread).toBe("primary");
    const job = server.push("primary");
    expect((await server.ended(job.jobId)).outcome).toBe("finished");
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
  });

  it("sends a report again soon after the server dropped it unread", async () => {
    const { server, pilot } = await startPilot({
      server: { heartbeatMs: 60_000, dropUnread: dropFirst("job.ended") },
    });
    await server.waitFor("pilot.ready");
    const job = server.push("primary");
    const ended = await server.ended(job.jobId);
    expect(server.droppedUnread.map((frame) => frame.id)).toEqual([ended.id]);
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
  });

  it("paces its frames under the rate the server announced: nothing is dropped", async () => {
    const jobs = 12;
    const { server, pilot } = await startPilot({
      server: { frameRate: { perSec: 20, burst: 4 } },
      flags: ["--stay", "--idle-timeout", "3"],
    });
    // Each job as soon as the thread asks: every job costs the pilot an ack, statuses, an end and a ready.
    let pushed = 0;
    const ended: Promise<unknown>[] = [];
    server.onFrame((frame) => {
      if (frame.type === "pilot.ready" && pushed < jobs) {
        pushed += 1;
        setImmediate(() => ended.push(server.ended(server.push("primary").jobId)));
      }
    });
    await server.waitFor("job.ended", (frame) => frame.jobId === `job-${jobs}`);
    await Promise.all(ended);
    const framesSent = server.received.length + server.droppedUnread.length;
    expect(framesSent).toBeGreaterThan(3 * jobs);
    expect(server.droppedUnread).toEqual([]);
    expect(server.all("job.ended").filter((frame) => frame.outcome === "finished")).toHaveLength(jobs);
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
  });
});
