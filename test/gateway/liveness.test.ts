import { describe, expect, it } from "vitest";
import { closeCodes } from "../../src/protocol/messages.js";
import { eventually, READY, SILENT_PILOT_PING_MS, startGateway } from "./helpers.js";

describe("pilot gateway liveness", () => {
  it("terminates a pilot that stops answering pings and tells the handlers why", async () => {
    const running = await startGateway({ pingIntervalMs: SILENT_PILOT_PING_MS });
    const silent = await running.connect({}, { autoPong: false });
    const { code } = await silent.closed;
    // The close frame goes out best effort before the socket is dropped.
    expect([closeCodes.heartbeatTimeout, 1006]).toContain(code);
    await eventually(() => running.seen.disconnects.length === 1);
    expect(running.seen.disconnects[0]).toEqual({ pilotId: silent.pilotId, reason: "heartbeat timeout" });
    expect(running.gateway.sessions()).toHaveLength(0);
  });

  it("keeps a pilot that answers pings across many intervals", async () => {
    const running = await startGateway({ pingIntervalMs: 100 });
    const pilot = await running.connect();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(running.gateway.session(pilot.pilotId)?.open).toBe(true);
    const ready = pilot.send(READY);
    expect(await pilot.acked()).toBe(ready);
  });
});
