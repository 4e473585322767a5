import type { AddressInfo, Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { GatewayRefusal, type ServerMessageInput } from "../../src/gateway/index.js";
import { encode } from "../../src/protocol/codec.js";
import { MAX_REFS_PER_ACK, subprotocolOf } from "../../src/protocol/messages.js";
import { tcpSocketOf } from "../../src/protocol/socket-cork.js";
import { countTcpWrites } from "../support/tcp-writes.js";
import { HandshakeRefusedError, openTestPilot } from "../support/test-pilot-client.js";
import { CERN, READY, startGateway, track } from "./helpers.js";

function jobPush(jobId: string): ServerMessageInput {
  return {
    type: "job.push",
    thread: "primary",
    job: {
      jobId,
      attempt: 1,
      taskId: "task-1",
      type: "production",
      command: ["true"],
      walltimeSec: 60,
      inputs: [],
      uploadUrl: "http://se.example/upload",
      outputs: [],
    },
  };
}

/** Counts the gateway's TCP writes to this one pilot's socket. */
function countWritesToPilot(
  running: Awaited<ReturnType<typeof startGateway>>,
  pilot: Awaited<ReturnType<typeof openTestPilot>>,
) {
  const gatewayPort = (running.server.address() as AddressInfo).port;
  const pilotPort = (tcpSocketOf(pilot.socket) as Socket).localPort;
  return countTcpWrites((socket) => socket.localPort === gatewayPort && socket.remotePort === pilotPort);
}

const HEARTBEAT = { type: "job.heartbeat", jobId: "job-1", attempt: 1 } as const;
const RUNNING = { type: "job.status", jobId: "job-1", attempt: 1, state: "running" } as const;

describe("protocol version negotiation", () => {
  it("picks the newest version the pilot offers, whatever its order", async () => {
    const running = await startGateway();
    const both = track(
      await openTestPilot(running.url, CERN, { subprotocols: [subprotocolOf(1), subprotocolOf(2)] }),
    );
    expect(both.socket.protocol).toBe("panda.v2");
    const oldOnly = track(
      await openTestPilot(running.url, CERN, { subprotocols: ["chat", subprotocolOf(1)] }),
    );
    expect(oldOnly.socket.protocol).toBe("panda.v1");
  });

  it("refuses an upgrade offering no version it speaks with 400 naming those it does", async () => {
    const running = await startGateway();
    const err = await openTestPilot(running.url, CERN, { subprotocols: ["panda.v3", "panda"] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HandshakeRefusedError);
    expect((err as HandshakeRefusedError).status).toBe(400);
    expect((err as HandshakeRefusedError).body).toContain("panda.v2, panda.v1");
    expect(running.gateway.sessions()).toHaveLength(0);
  });

  it("stamps the negotiated version on every frame it sends", async () => {
    const running = await startGateway();
    const v1 = await running.connect({}, { version: 1 });
    const v2 = await running.connect({}, { version: 2 });
    expect([v1.welcome.v, v2.welcome.v]).toEqual([1, 2]);
    const garbage = Buffer.from("not msgpack");
    v1.sendRaw(garbage);
    v2.sendRaw(garbage);
    expect([(await v1.next("error")).v, (await v2.next("error")).v]).toEqual([1, 2]);
  });

  it("answers a frame of another version than the socket's with SCHEMA naming v", async () => {
    const running = await startGateway();
    for (const [socketVersion, frameVersion] of [
      [2, 1],
      [1, 2],
    ] as const) {
      const pilot = await running.connect({}, { version: socketVersion });
      pilot.sendRaw(encode({ ...READY, v: frameVersion, id: `wrong-v${frameVersion}` }));
      const error = await pilot.next("error");
      expect(error).toMatchObject({ code: "SCHEMA", ref: `wrong-v${frameVersion}` });
      expect(error.message).toContain(`v: expected ${socketVersion}`);
    }
    expect(running.seen.messages).toHaveLength(0);
  });
});

describe("acknowledgements", () => {
  it("version 2: answers the frames handled in one turn with one ack listing them all, in order", async () => {
    const running = await startGateway();
    const pilot = await running.connect({}, { version: 2 });
    const ids = pilot.sendTogether([READY, HEARTBEAT, RUNNING]);
    const ack = await pilot.next("ack");
    expect(ack).toMatchObject({ v: 2, refs: ids });
    expect(ack).not.toHaveProperty("ref");
    // A later turn's frame gets an ack of its own.
    const later = pilot.send(READY);
    expect(await pilot.next("ack")).toMatchObject({ refs: [later] });
  });

  it("version 2: a bad frame among them gets its own error frame, the others one ack", async () => {
    const running = await startGateway();
    const pilot = await running.connect({}, { version: 2 });
    const bad = encode({ ...RUNNING, v: 2, id: "bad-attempt", attempt: 0 });
    const [ready, , heartbeat] = pilot.sendTogether([READY, bad, HEARTBEAT]);
    const error = await pilot.next("error");
    expect(error).toMatchObject({ code: "SCHEMA", ref: "bad-attempt" });
    expect(error.message).toContain("attempt:");
    expect(await pilot.next("ack")).toMatchObject({ refs: [ready, heartbeat] });
  });

  it("version 2: a frame the handler refuses gets its own error frame, the others one ack", async () => {
    const running = await startGateway(
      {},
      {
        onMessage: async (_session, message) => {
          if (message.type === "job.status") throw new GatewayRefusal("NOT_YOUR_JOB", "job-1 runs elsewhere");
        },
      },
    );
    const pilot = await running.connect({}, { version: 2 });
    const [ready, status, heartbeat] = pilot.sendTogether([READY, RUNNING, HEARTBEAT]);
    expect(await pilot.next("error")).toMatchObject({ code: "NOT_YOUR_JOB", ref: status });
    expect(await pilot.next("ack")).toMatchObject({ refs: [ready, heartbeat] });
  });

  it(`version 2: spreads more than ${MAX_REFS_PER_ACK} frames of one turn over several acks`, async () => {
    const frames = MAX_REFS_PER_ACK + 44;
    const running = await startGateway({ ratePerSec: 1e6, burst: 1e6, maxQueuedMessages: 1_000 });
    const pilot = await running.connect({}, { version: 2 });
    const ids = pilot.sendTogether(Array.from({ length: frames }, () => READY));
    const acks = [];
    let acked = 0;
    while (acked < frames) {
      const ack = await pilot.next("ack");
      if (ack.v !== 2) throw new Error("a version 1 ack on a version 2 socket");
      expect(ack.refs.length).toBeLessThanOrEqual(MAX_REFS_PER_ACK);
      acks.push(...ack.refs);
      acked += ack.refs.length;
    }
    expect(acks).toEqual(ids);
  });

  it("version 2: writes a turn's ack and the push it caused in one TCP write", async () => {
    const running = await startGateway(
      {},
      {
        onMessage: async (session, message) => {
          if (message.type === "pilot.ready") session.push(jobPush("job-7"));
        },
      },
    );
    const pilot = await running.connect({}, { version: 2 });
    const writes = countWritesToPilot(running, pilot);
    try {
      const ids = pilot.sendTogether([HEARTBEAT, READY]);
      expect((await pilot.next("job.push")).job.jobId).toBe("job-7");
      expect(await pilot.next("ack")).toMatchObject({ refs: ids });
      expect(writes.count).toBe(1);
    } finally {
      writes.stop();
    }
  });

  it("version 2: holds an ack until the next frame to the pilot, in a later turn, and writes both at once", async () => {
    let pushLater: () => void = () => {};
    let readyHandled!: () => void;
    const handled = new Promise<void>((resolve) => {
      readyHandled = resolve;
    });
    const running = await startGateway(
      { ackHoldMs: 60_000 },
      {
        onMessage: async (session, message) => {
          if (message.type !== "pilot.ready") return;
          pushLater = () => session.push(jobPush("job-8"));
          readyHandled();
        },
      },
    );
    const pilot = await running.connect({}, { version: 2 });
    const writes = countWritesToPilot(running, pilot);
    try {
      const ids = pilot.sendTogether([HEARTBEAT, READY]);
      await handled;
      // Acknowledged once handled, and held past the end of that turn (where an unheld ack is written).
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(writes.count).toBe(0);
      pushLater();
      expect((await pilot.next("job.push")).job.jobId).toBe("job-8");
      expect(await pilot.next("ack")).toMatchObject({ refs: ids });
      expect(writes.count).toBe(1);
    } finally {
      writes.stop();
    }
  });

  it("version 2: sends a held ack on its own once no frame came to carry it within ackHoldMs", async () => {
    const running = await startGateway({ ackHoldMs: 30 });
    const pilot = await running.connect({}, { version: 2 });
    const sentAtMs = performance.now();
    const ids = pilot.sendTogether([HEARTBEAT, READY]);
    expect(await pilot.next("ack")).toMatchObject({ refs: ids });
    expect(performance.now() - sentAtMs).toBeGreaterThanOrEqual(25);
  });

  it("version 2 with ackHoldMs 0: acknowledges at the end of the turn that handled the frames", async () => {
    const running = await startGateway({ ackHoldMs: 0 });
    const pilot = await running.connect({}, { version: 2 });
    const ids = pilot.sendTogether([HEARTBEAT, READY]);
    expect(await pilot.next("ack")).toMatchObject({ refs: ids });
  });

  it("version 1: answers each frame with an ack of its own, even frames of one turn", async () => {
    const running = await startGateway();
    const pilot = await running.connect({}, { version: 1 });
    const ids = pilot.sendTogether([READY, HEARTBEAT, RUNNING]);
    const acks = [await pilot.next("ack"), await pilot.next("ack"), await pilot.next("ack")];
    expect(acks.map((ack) => (ack.v === 1 ? ack.ref : ack.refs))).toEqual(ids);
    for (const ack of acks) expect(ack).not.toHaveProperty("refs");
  });

  it("version 1: a bad frame among them gets an error, every other frame its own ack", async () => {
    const running = await startGateway();
    const pilot = await running.connect({}, { version: 1 });
    const bad = encode({ ...RUNNING, v: 1, id: "bad-attempt", attempt: 0 });
    const [ready, , heartbeat] = pilot.sendTogether([READY, bad, HEARTBEAT]);
    expect(await pilot.next("error")).toMatchObject({ code: "SCHEMA", ref: "bad-attempt" });
    expect(await pilot.next("ack")).toMatchObject({ v: 1, ref: ready });
    expect(await pilot.next("ack")).toMatchObject({ v: 1, ref: heartbeat });
  });
});
