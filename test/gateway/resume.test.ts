import { describe, expect, it } from "vitest";
import { closeCodes } from "../../src/protocol/messages.js";
import { HelloRefusedError } from "../support/test-pilot-client.js";
import { eventually, READY, SILENT_PILOT_PING_MS, startGateway } from "./helpers.js";

describe("pilot gateway resume", () => {
  it("gives a pilot whose socket the server terminated its id back, resumed", async () => {
    const running = await startGateway({ pingIntervalMs: SILENT_PILOT_PING_MS });
    const silent = await running.connect({}, { autoPong: false });
    await silent.closed;
    await eventually(() => running.seen.disconnects.length === 1);
    expect(running.gateway.session(silent.pilotId)).toBeUndefined();

    const back = await running.connect({ resume: { pilotId: silent.pilotId, token: silent.resumeToken } });
    expect(back.pilotId).toBe(silent.pilotId);
    expect(back.resumeToken).toBe(silent.resumeToken);
    expect(running.seen.hellos).toEqual([
      { pilotId: silent.pilotId, resumed: false },
      { pilotId: silent.pilotId, resumed: true },
    ]);
    const ready = back.send(READY);
    expect(await back.acked()).toBe(ready);
  });

  it("closes a still-open old socket with 4002 and ends it before the resumed session starts", async () => {
    const running = await startGateway();
    const old = await running.connect();
    const back = await running.connect({ resume: { pilotId: old.pilotId, token: old.resumeToken } });
    expect((await old.closed).code).toBe(closeCodes.replaced);
    expect(back.pilotId).toBe(old.pilotId);
    expect(running.seen.calls).toEqual([
      `hello ${old.pilotId}`,
      `disconnect ${old.pilotId}`,
      `hello ${old.pilotId}`,
    ]);
    expect(running.seen.disconnects[0]?.reason).toBe("replaced by a resumed session");
    expect(running.gateway.session(old.pilotId)?.open).toBe(true);
    expect(running.gateway.sessions()).toHaveLength(1);
  });

  it("lets a pilot resume on a new gateway holding the same secret (a server restart)", async () => {
    const first = await startGateway();
    const pilot = await first.connect();
    await first.stop();
    await pilot.closed;

    const second = await startGateway();
    const back = await second.connect({ resume: { pilotId: pilot.pilotId, token: pilot.resumeToken } });
    expect(back.pilotId).toBe(pilot.pilotId);
    expect(second.seen.hellos).toEqual([{ pilotId: pilot.pilotId, resumed: true }]);
  });

  it("refuses a forged resume token with UNAUTHORIZED and 4001", async () => {
    const running = await startGateway();
    const victim = await running.connect();
    const forged = `${victim.resumeToken.slice(0, -2)}AA`;
    const err = await running
      .connect({ resume: { pilotId: victim.pilotId, token: forged } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelloRefusedError);
    expect((err as HelloRefusedError).frame.code).toBe("UNAUTHORIZED");
    // The victim's session is untouched.
    expect(running.gateway.session(victim.pilotId)?.open).toBe(true);
    const ready = victim.send(READY);
    expect(await victim.acked()).toBe(ready);
  });

  it("refuses a resume token of one pilot presented for another id", async () => {
    const running = await startGateway();
    const a = await running.connect();
    const b = await running.connect();
    const err = await running
      .connect({ resume: { pilotId: b.pilotId, token: a.resumeToken } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelloRefusedError);
  });

  it("refuses a resume token presented with another site's credential", async () => {
    const running = await startGateway();
    const cern = await running.connect();
    const err = await running
      .connect(
        { site: "BNL", resume: { pilotId: cern.pilotId, token: cern.resumeToken } },
        { token: "token-bnl" },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelloRefusedError);
    expect(running.gateway.session(cern.pilotId)?.open).toBe(true);
  });

  it("refuses a token made with another secret", async () => {
    const first = await startGateway();
    const pilot = await first.connect();
    const other = await startGateway({ resumeSecret: Buffer.alloc(32, 7) });
    const err = await other
      .connect({ resume: { pilotId: pilot.pilotId, token: pilot.resumeToken } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(HelloRefusedError);
  });
});
