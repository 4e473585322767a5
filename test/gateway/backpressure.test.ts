import { describe, expect, it } from "vitest";
import type { ServerMessageInput } from "../../src/gateway/index.js";
import { eventually, READY, startGateway } from "./helpers.js";

/** A job push of about `bytes` bytes (padded through its environment). */
function bulkyPush(index: number, bytes: number): ServerMessageInput {
  return {
    type: "job.push",
    thread: "primary",
    job: {
      jobId: `job-${index}`,
      attempt: 1,
      taskId: "task-1",
      type: "production",
      command: ["true"],
      env: { PADDING: "x".repeat(bytes) },
      walltimeSec: 60,
      inputs: [],
      uploadUrl: "http://se.example/upload",
      outputs: [],
    },
  };
}

describe("pilot gateway pushes", () => {
  it("delivers a push to the pilot", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    expect(running.gateway.session(pilot.pilotId)?.push(bulkyPush(1, 10))).toBe(true);
    const push = await pilot.next("job.push");
    expect(push.job.jobId).toBe("job-1");
    expect(push.job.env).toEqual({ PADDING: "x".repeat(10) });
  });

  it("refuses pushes, without queueing, while the pilot does not read", async () => {
    const maxBufferedBytes = 256 * 1024;
    const running = await startGateway({ maxBufferedBytes });
    const pilot = await running.connect();
    const session = running.gateway.session(pilot.pilotId)!;
    pilot.socket.pause();
    let accepted = 0;
    while (session.push(bulkyPush(accepted, 256 * 1024))) {
      accepted += 1;
      if (accepted > 2_000) throw new Error("push never refused");
    }
    expect(accepted).toBeGreaterThan(0);
    expect(session.open).toBe(true);
    // Once the pilot reads again, everything accepted arrives, in order.
    pilot.socket.resume();
    for (let index = 0; index < accepted; index++) {
      expect((await pilot.next("job.push")).job.jobId).toBe(`job-${index}`);
    }
    expect(session.push(bulkyPush(accepted, 10))).toBe(true);
  });

  it("drops a pilot that does not read even the answers it is owed", async () => {
    const maxBufferedBytes = 16 * 1024;
    const running = await startGateway({ maxBufferedBytes, ratePerSec: 1e6, burst: 1e6 });
    const pilot = await running.connect();
    const session = running.gateway.session(pilot.pilotId)!;
    pilot.socket.pause();
    for (let index = 0; session.push(bulkyPush(index, 64 * 1024)); index++) {
      if (index > 2_000) throw new Error("push never refused");
    }
    for (let i = 0; i < 10_000 && session.open; i++) {
      pilot.send(READY);
      if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await eventually(() => running.seen.disconnects.length === 1);
    expect(running.seen.disconnects[0]?.reason).toBe("pilot does not read its socket");
  });

  it("refuses pushes after the session closed", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    const session = running.gateway.session(pilot.pilotId)!;
    await pilot.close();
    expect(session.push(bulkyPush(1, 10))).toBe(false);
    expect(session.open).toBe(false);
  });

  it("refuses a push before the welcome went out", async () => {
    let pushedDuringHello: boolean | undefined;
    const running = await startGateway(
      {},
      {
        onHello: async (session) => {
          pushedDuringHello = session.push(bulkyPush(1, 10));
          return [];
        },
      },
    );
    await running.connect();
    expect(pushedDuringHello).toBe(false);
  });

  it("throws on a push that breaks the wire contract", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    const session = running.gateway.session(pilot.pilotId)!;
    const bad = { type: "job.kill", jobId: "job-1", attempt: 0, reason: "x" } as ServerMessageInput;
    expect(() => session.push(bad)).toThrow(/attempt/);
  });
});
