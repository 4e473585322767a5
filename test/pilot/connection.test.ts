import { afterEach, describe, expect, it } from "vitest";
import { PilotConnection, type PilotWelcome, pilotSocketUrl } from "../../src/pilot/connection.js";
import { FrameIds, makeFrame } from "../../src/pilot/frames.js";
import { PilotLog } from "../../src/pilot/log.js";
import { countTcpWrites } from "../support/tcp-writes.js";
import { FakeServer, SITE, TOKEN } from "./fake-server.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The pilot's connection in this process, against the fake server, resolved once welcomed. */
async function connect(server: FakeServer, ids: FrameIds): Promise<PilotConnection> {
  let welcomed!: (welcome: PilotWelcome) => void;
  const welcome = new Promise<PilotWelcome>((resolve) => {
    welcomed = resolve;
  });
  const connection = new PilotConnection(
    pilotSocketUrl(server.url),
    TOKEN,
    ids,
    {
      hello: async () => ({
        site: SITE,
        cores: 1,
        memoryMb: 1000,
        diskMb: 1000,
        walltimeLeftSec: 3600,
        multitask: true,
      }),
      onWelcome: welcomed,
      onMessage: () => {},
      onHeartbeat: () => {},
      onUnauthorized: () => {},
    },
    new PilotLog(() => {}),
  );
  cleanups.push(() => connection.close());
  connection.start();
  await welcome;
  return connection;
}

describe("pilot connection", () => {
  it("writes the frames it sends in one turn in one TCP write", async () => {
    const server = await FakeServer.start();
    cleanups.push(() => server.close());
    const serverPort = Number(new URL(server.url).port);
    const writes = countTcpWrites((socket) => socket.remotePort === serverPort);
    cleanups.push(() => writes.stop());
    const ids = new FrameIds();
    const connection = await connect(server, ids);

    const before = writes.count;
    connection.send(makeFrame(ids, { type: "pilot.ready", thread: "primary" }));
    connection.send(makeFrame(ids, { type: "pilot.ready", thread: "secondary" }));
    connection.send(makeFrame(ids, { type: "job.heartbeat", jobId: "job-1", attempt: 1 }));
    await server.waitFor("job.heartbeat");
    expect(writes.count - before).toBe(1);
    expect(server.all("pilot.ready").map((ready) => ready.thread)).toEqual(["primary", "secondary"]);
  });
});
