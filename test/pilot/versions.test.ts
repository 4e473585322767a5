import { describe, expect, it } from "vitest";
import { usePilotFixture } from "./pilot-process.js";

const startPilot = usePilotFixture();

describe("pilot protocol versions", () => {
  it("speaks version 2 with a server that does, and forgets each report a batched ack names", async () => {
    // Heartbeats far apart: a report is resent only after four of them, so any resend here would be a bug.
    const { server, pilot } = await startPilot({ server: { holdAcks: true, heartbeatMs: 5_000 } });
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["true"] });
    const ended = await server.ended(job.jobId);
    const reports = [...server.all("job.status"), ended];
    expect(reports.map((report) => (report.type === "job.status" ? report.state : report.type))).toEqual([
      "starting",
      "running",
      "job.ended",
    ]);

    // Until the acks come the pilot owes the reports and does not exit.
    server.releaseAcks();
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.acks).toEqual([reports.map((report) => report.id)]);
    expect(server.negotiated).toEqual([2]);
    expect(new Set(server.received.map((frame) => frame.v))).toEqual(new Set([2]));
    // Each report went out once: the batched ack acknowledged every one of them.
    expect(server.received.filter((frame) => frame.type !== "job.heartbeat")).toHaveLength(
      new Set(server.received.map((frame) => frame.id)).size,
    );
    expect(server.invalid).toEqual([]);
  });

  it("falls back to version 1 with a server that speaks only it", async () => {
    const { server, pilot } = await startPilot({ server: { versions: [1] } });
    await server.waitFor("pilot.ready");
    const job = server.push("primary", { command: ["true"] });
    expect((await server.ended(job.jobId)).outcome).toBe("finished");
    expect(await pilot.exited).toEqual({ code: 0, signal: null });
    expect(server.negotiated).toEqual([1]);
    expect(new Set(server.received.map((frame) => frame.v))).toEqual(new Set([1]));
    expect(server.acks.every((refs) => refs.length === 1)).toBe(true);
    expect(server.invalid).toEqual([]);
  });
});
