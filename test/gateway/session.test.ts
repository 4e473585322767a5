import { describe, expect, it } from "vitest";
import { GatewayRefusal } from "../../src/gateway/index.js";
import { closeCodes, PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { HelloRefusedError, openTestPilot, TestPilotClosedError } from "../support/test-pilot-client.js";
import { CERN, eventually, HELLO, READY, recordingLogger, startGateway, track } from "./helpers.js";

describe("pilot gateway sessions", () => {
  it("welcomes a hello with a fresh pilot id, resume token and heartbeat period", async () => {
    const running = await startGateway({ heartbeatMs: 12_345 });
    const pilot = await running.connect();
    expect(pilot.welcome).toMatchObject({ v: PROTOCOL_VERSION, heartbeatMs: 12_345, jobs: [] });
    expect(pilot.pilotId).toMatch(/^p-[0-9a-f]{12}$/);
    expect(pilot.resumeToken.length).toBeGreaterThanOrEqual(16);
    expect(running.seen.hellos).toEqual([{ pilotId: pilot.pilotId, resumed: false }]);
    const session = running.gateway.session(pilot.pilotId);
    expect(session).toMatchObject({ pilotId: pilot.pilotId, site: "CERN", open: true });
    expect(session?.principal).toEqual({ site: "CERN", tokenId: "tok-cern" });
    expect(session?.hello.cores).toBe(HELLO.cores);
  });

  it("hands the handler's jobs to the pilot in the welcome", async () => {
    const jobs = [{ jobId: "job-1", attempt: 2, thread: "primary" as const }];
    const running = await startGateway({}, { onHello: async () => jobs });
    const pilot = await running.connect();
    expect(pilot.welcome.jobs).toEqual(jobs);
  });

  it("acks every later message once the handler resolved, in arrival order", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    const first = pilot.send(READY);
    const second = pilot.send({ type: "job.heartbeat", jobId: "job-1", attempt: 1 });
    expect(await pilot.acked()).toBe(first);
    expect(await pilot.acked()).toBe(second);
    expect(running.seen.messages.map((m) => m.message.type)).toEqual(["pilot.ready", "job.heartbeat"]);
  });

  it("answers a first message other than hello with NOT_READY and closes 1008", async () => {
    const running = await startGateway();
    const pilot = track(await openTestPilot(running.url, CERN));
    const id = pilot.send(READY);
    const error = await pilot.next("error");
    expect(error).toMatchObject({ code: "NOT_READY", ref: id });
    expect((await pilot.closed).code).toBe(closeCodes.policyViolation);
    expect(running.seen.hellos).toHaveLength(0);
    expect(running.seen.disconnects).toHaveLength(0);
  });

  it("refuses a hello for another site than the credential's with UNAUTHORIZED and 4001", async () => {
    const running = await startGateway();
    const err = await running.connect({ site: "BNL" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelloRefusedError);
    expect((err as HelloRefusedError).frame.code).toBe("UNAUTHORIZED");
    expect(running.gateway.sessions()).toHaveLength(0);
    expect(running.seen.hellos).toHaveLength(0);
  });

  it("closes 4001 after a site mismatch", async () => {
    const running = await startGateway();
    const pilot = track(await openTestPilot(running.url, CERN));
    pilot.send({ type: "pilot.hello", ...HELLO, site: "BNL" });
    expect((await pilot.next("error")).code).toBe("UNAUTHORIZED");
    expect((await pilot.closed).code).toBe(closeCodes.unauthorized);
  });

  it("answers a second hello on the same socket with an error and keeps the session", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    const id = pilot.send({ type: "pilot.hello", ...HELLO });
    expect(await pilot.next("error")).toMatchObject({ code: "MALFORMED", ref: id });
    const ready = pilot.send(READY);
    expect(await pilot.acked()).toBe(ready);
  });

  it("relays a handler's refusal (NOT_YOUR_JOB) as an error frame and keeps the session", async () => {
    const running = await startGateway(
      {},
      {
        onMessage: async (_session, message) => {
          if (message.type === "job.status") throw new GatewayRefusal("NOT_YOUR_JOB", "job-9 runs elsewhere");
        },
      },
    );
    const pilot = await running.connect();
    const id = pilot.send({ type: "job.status", jobId: "job-9", attempt: 1, state: "running" });
    expect(await pilot.next("error")).toMatchObject({
      code: "NOT_YOUR_JOB",
      ref: id,
      message: "job-9 runs elsewhere",
    });
    const ready = pilot.send(READY);
    expect(await pilot.acked()).toBe(ready);
  });

  it("answers a handler failure with INTERNAL, logs it with the pilot id, and keeps the session", async () => {
    const log = recordingLogger();
    let fail = true;
    const running = await startGateway(
      { log },
      {
        onMessage: async () => {
          if (fail) throw new Error("store unavailable");
        },
      },
    );
    const pilot = await running.connect();
    const id = pilot.send(READY);
    expect(await pilot.next("error")).toMatchObject({ code: "INTERNAL", ref: id });
    const logged = log.lines.find((line) => line.level === "error");
    expect(logged?.fields).toMatchObject({ pilotId: pilot.pilotId, ref: id });
    expect(JSON.stringify(log.lines)).not.toContain(pilot.resumeToken);
    fail = false;
    const again = pilot.send({ ...READY, id });
    expect(await pilot.acked()).toBe(again);
  });

  it("closes with 1011 when the hello handler fails, and still reports the disconnect", async () => {
    const running = await startGateway(
      {},
      {
        onHello: async () => {
          throw new Error("boom");
        },
      },
    );
    const pilot = track(await openTestPilot(running.url, CERN));
    pilot.send({ type: "pilot.hello", ...HELLO });
    expect((await pilot.next("error")).code).toBe("INTERNAL");
    expect((await pilot.closed).code).toBe(closeCodes.internalError);
    await eventually(() => running.seen.disconnects.length === 1);
  });

  it("limits sessions per credential, closing the one over the limit with 1008", async () => {
    const running = await startGateway({ maxSessionsPerToken: 2 });
    await running.connect();
    await running.connect();
    const third = running.connect();
    await expect(third).rejects.toBeInstanceOf(TestPilotClosedError);
    await expect(third).rejects.toMatchObject({ code: closeCodes.policyViolation });
    // Another credential is not affected.
    await running.connect({ site: "BNL" }, { token: "token-bnl" });
    expect(running.gateway.sessions()).toHaveLength(3);
  });

  it("closes a socket that never says hello", async () => {
    const running = await startGateway({ helloTimeoutMs: 50 });
    const pilot = track(await openTestPilot(running.url, CERN));
    expect((await pilot.closed).code).toBe(closeCodes.policyViolation);
  });

  it("tells the handlers once when a pilot closes its socket", async () => {
    const running = await startGateway();
    const pilot = await running.connect();
    await pilot.close(1000, "bye");
    await eventually(() => running.seen.disconnects.length === 1);
    expect(running.seen.disconnects[0]).toEqual({
      pilotId: pilot.pilotId,
      reason: "closed by the pilot (1000 bye)",
    });
    expect(running.gateway.sessions()).toHaveLength(0);
  });

  /** A message handler that holds every message until released, counting how many it holds at once. */
  function gatedHandler() {
    const stats = { handled: 0, inFlight: 0, mostInFlight: 0 };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const onMessage = async () => {
      stats.handled += 1;
      stats.inFlight += 1;
      stats.mostInFlight = Math.max(stats.mostInFlight, stats.inFlight);
      await gate;
      stats.inFlight -= 1;
    };
    return { stats, onMessage, release };
  }

  it("handles one message at a time when so configured, and stops reading while the handlers lag", async () => {
    const gated = gatedHandler();
    const running = await startGateway(
      { maxQueuedMessages: 4, maxConcurrentMessages: 1, pingIntervalMs: 100 },
      { onMessage: gated.onMessage },
    );
    const pilot = await running.connect();
    const ids = Array.from({ length: 40 }, () => pilot.send(READY));
    // Several ping intervals pass while the gateway does not read the socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gated.stats.handled).toBeLessThan(40);
    gated.release();
    const acks = [];
    for (const _ of ids) acks.push(await pilot.acked());
    expect(acks).toEqual(ids);
    expect(gated.stats.mostInFlight).toBe(1);
    expect(running.gateway.session(pilot.pilotId)?.open).toBe(true);
  });

  it("hands up to maxConcurrentMessages messages to the handlers at once and answers each", async () => {
    const gated = gatedHandler();
    const running = await startGateway(
      { maxQueuedMessages: 64, maxConcurrentMessages: 8 },
      { onMessage: gated.onMessage },
    );
    const pilot = await running.connect();
    const ids = Array.from({ length: 20 }, () => pilot.send(READY));
    await eventually(() => gated.stats.inFlight === 8);
    gated.release();
    const acks = [];
    for (const _ of ids) acks.push(await pilot.acked());
    expect(acks).toEqual(ids);
    expect(gated.stats.mostInFlight).toBe(8);
    expect(gated.stats.handled).toBe(20);
  });

  it("reports a disconnect only after the handler in flight settled", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const running = await startGateway(
      {},
      {
        onMessage: async () => {
          running.seen.calls.push("message started");
          await gate;
          running.seen.calls.push("message settled");
        },
      },
    );
    const pilot = await running.connect();
    pilot.send(READY);
    await eventually(() => running.seen.calls.includes("message started"));
    await pilot.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(running.seen.disconnects).toHaveLength(0);
    release();
    await eventually(() => running.seen.disconnects.length === 1);
    expect(running.seen.calls.slice(-2)).toEqual(["message settled", `disconnect ${pilot.pilotId}`]);
  });

  it("drops, after the grace, a pilot that does not answer the close on close()", async () => {
    const running = await startGateway({ closeGraceMs: 50 });
    const deaf = await running.connect();
    deaf.socket.pause();
    const started = Date.now();
    await running.gateway.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(running.seen.disconnects).toEqual([{ pilotId: deaf.pilotId, reason: "server shutting down" }]);
  });

  it("closes every session with 1001 on close()", async () => {
    const running = await startGateway();
    const a = await running.connect();
    const b = await running.connect();
    await running.gateway.close();
    expect((await a.closed).code).toBe(closeCodes.serverShutdown);
    expect((await b.closed).code).toBe(closeCodes.serverShutdown);
    expect(running.seen.disconnects.map((d) => d.reason)).toEqual([
      "server shutting down",
      "server shutting down",
    ]);
  });
});
