import { describe, expect, it } from "vitest";
import { PROTOCOL_SUBPROTOCOL } from "../../src/protocol/messages.js";
import { HandshakeRefusedError, openTestPilot } from "../support/test-pilot-client.js";
import { CERN, recordingLogger, startGateway, track } from "./helpers.js";

async function refusal(promise: Promise<unknown>): Promise<HandshakeRefusedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HandshakeRefusedError);
  return err as HandshakeRefusedError;
}

describe("pilot gateway upgrade", () => {
  it("refuses an upgrade without a credential with 401 and creates no session", async () => {
    const running = await startGateway();
    const err = await refusal(openTestPilot(running.url, ""));
    expect(err.status).toBe(401);
    expect(running.gateway.sessions()).toHaveLength(0);
    expect(running.seen.hellos).toHaveLength(0);
  });

  it("refuses an unknown credential with 401 and never logs it", async () => {
    const log = recordingLogger();
    const running = await startGateway({ log });
    const err = await refusal(openTestPilot(running.url, "forged-secret-token"));
    expect(err.status).toBe(401);
    expect(err.body).toContain("credential refused");
    expect(running.gateway.sessions()).toHaveLength(0);
    expect(JSON.stringify(log.lines)).not.toContain("forged-secret-token");
  });

  it("accepts the credential as ?token= for clients that cannot set headers", async () => {
    const running = await startGateway();
    const pilot = track(await openTestPilot(running.url, CERN, { tokenInQuery: true }));
    expect(pilot.socket.protocol).toBe(PROTOCOL_SUBPROTOCOL);
  });

  it("answers 404 on another path", async () => {
    const running = await startGateway();
    const err = await refusal(openTestPilot(running.url.replace("/pilot", "/elsewhere"), CERN));
    expect(err.status).toBe(404);
    expect(err.body).toContain("/pilot");
  });

  it("answers 400 naming the supported subprotocol when the pilot offers another", async () => {
    const running = await startGateway();
    const err = await refusal(openTestPilot(running.url, CERN, { subprotocols: ["panda.v0", "chat"] }));
    expect(err.status).toBe(400);
    expect(err.body).toContain(PROTOCOL_SUBPROTOCOL);
  });

  it("answers 400 when no subprotocol is offered at all", async () => {
    const running = await startGateway();
    const err = await refusal(openTestPilot(running.url, CERN, { subprotocols: [] }));
    expect(err.status).toBe(400);
  });

  it("answers 500 when the authenticator throws, logging without the token", async () => {
    const log = recordingLogger();
    const running = await startGateway(
      { log },
      {
        authenticate: async () => {
          throw new Error("credential store down");
        },
      },
    );
    const err = await refusal(openTestPilot(running.url, CERN));
    expect(err.status).toBe(500);
    expect(log.lines.some((line) => line.level === "error")).toBe(true);
    expect(JSON.stringify(log.lines)).not.toContain(CERN);
  });

  it("answers 503 once the gateway is closing", async () => {
    const running = await startGateway();
    await running.gateway.close();
    const err = await refusal(openTestPilot(running.url, CERN));
    expect(err.status).toBe(503);
  });
});
