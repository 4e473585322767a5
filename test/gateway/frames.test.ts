import { describe, expect, it } from "vitest";
import { encode } from "../../src/protocol/codec.js";
import { closeCodes, PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { eventually, READY, recordingLogger, startGateway } from "./helpers.js";

const GARBAGE = Buffer.from("definitely not msgpack");

describe("pilot gateway frames", () => {
  it("answers garbage bytes with MALFORMED and keeps the session", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    pilot.sendRaw(GARBAGE);
    expect((await pilot.next("error")).code).toBe("MALFORMED");
    const ready = pilot.send(READY);
    expect(await pilot.acked()).toBe(ready);
    expect(running.gateway.session(pilot.pilotId)?.open).toBe(true);
  });

  it("closes with 1002 after too many bad frames in a row", async () => {
    const running = await startGateway({ maxConsecutiveBadFrames: 3 });
    const pilot = await running.connect();
    for (let i = 0; i < 3; i++) pilot.sendRaw(GARBAGE);
    expect((await pilot.closed).code).toBe(closeCodes.protocolError);
    await eventually(() => running.seen.disconnects.length === 1);
  });

  it("forgives bad frames once a good one arrives", async () => {
    const running = await startGateway({ maxConsecutiveBadFrames: 3 });
    const pilot = await running.connect();
    for (let round = 0; round < 3; round++) {
      pilot.sendRaw(GARBAGE);
      pilot.sendRaw(GARBAGE);
      const ready = pilot.send(READY);
      expect(await pilot.acked()).toBe(ready);
    }
    expect(running.gateway.session(pilot.pilotId)?.open).toBe(true);
  });

  it("answers valid msgpack with a wrong schema with SCHEMA naming the bad field", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    pilot.sendRaw(
      encode({
        type: "job.status",
        v: PROTOCOL_VERSION,
        id: "bad-1",
        jobId: "job-1",
        attempt: 0,
        state: "running",
      }),
    );
    const error = await pilot.next("error");
    expect(error).toMatchObject({ code: "SCHEMA", ref: "bad-1" });
    expect(error.message).toContain("attempt:");
    pilot.sendRaw(encode({ type: "pilot.teleport", v: PROTOCOL_VERSION, id: "bad-2" }));
    const unknown = await pilot.next("error");
    expect(unknown).toMatchObject({ code: "SCHEMA", ref: "bad-2" });
    expect(unknown.message).toContain("type: expected one of pilot.hello, pilot.ready");
    expect(running.seen.messages).toHaveLength(0);
  });

  it("answers a text frame with MALFORMED", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    pilot.sendRaw(JSON.stringify({ ...READY, v: PROTOCOL_VERSION, id: "json-1" }));
    const error = await pilot.next("error");
    expect(error.code).toBe("MALFORMED");
    expect(error.message).toContain("binary");
  });

  it("closes an oversized frame with 1009 while another pilot keeps working", async () => {
    const log = recordingLogger();
    const running = await startGateway({ maxPayloadBytes: 4096, log });
    const big = await running.connect();
    const other = await running.connect();
    big.sendRaw(Buffer.alloc(10_000, 0xa1));
    expect((await big.closed).code).toBe(closeCodes.tooLarge);
    await eventually(() => running.seen.disconnects.some((d) => d.pilotId === big.pilotId));
    const ready = other.send(READY);
    expect(await other.acked()).toBe(ready);
    const newcomer = await running.connect();
    expect(running.gateway.sessions().map((s) => s.pilotId)).toEqual([other.pilotId, newcomer.pilotId]);
  });

  it("answers frames over the rate with RATE_LIMITED, then accepts again after a pause", async () => {
    const running = await startGateway({ ratePerSec: 4, burst: 3 });
    const pilot = await running.connect();
    // The hello took one token: two more fit the burst, the rest are dropped.
    const ids = Array.from({ length: 6 }, () => pilot.send(READY));
    const acks = [await pilot.acked(), await pilot.acked()];
    expect(acks).toEqual(ids.slice(0, 2));
    const limited = await Promise.all(ids.slice(2).map(() => pilot.next("error")));
    expect(limited.map((e) => e.code)).toEqual([
      "RATE_LIMITED",
      "RATE_LIMITED",
      "RATE_LIMITED",
      "RATE_LIMITED",
    ]);
    expect(limited.map((e) => e.ref)).toEqual(ids.slice(2));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const later = pilot.send(READY);
    expect(await pilot.acked()).toBe(later);
  });

  it("closes with 4003 a session that keeps sending over its rate", async () => {
    const running = await startGateway({ ratePerSec: 1, burst: 2, maxConsecutiveRateLimitedFrames: 5 });
    const pilot = await running.connect();
    for (let i = 0; i < 20; i++) pilot.send(READY);
    expect((await pilot.closed).code).toBe(closeCodes.rateLimited);
  });
});
