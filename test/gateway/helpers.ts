import { randomBytes } from "node:crypto";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";
import {
  type GatewayHandlers,
  type GatewayOptions,
  PilotGateway,
  type PilotPrincipal,
  type PilotReport,
  type PilotSession,
} from "../../src/gateway/index.js";
import type { Logger } from "../../src/runtime/logger.js";
import {
  type ConnectedTestPilot,
  connectTestPilot,
  type HelloDraft,
  type TestPilot,
  type TestPilotOptions,
} from "../support/test-pilot-client.js";

/** Credentials the fake authenticator knows. */
export const TOKENS: Record<string, PilotPrincipal> = {
  "token-cern": { site: "CERN", tokenId: "tok-cern" },
  "token-bnl": { site: "BNL", tokenId: "tok-bnl" },
};
export const CERN = "token-cern";

export const HELLO: HelloDraft = {
  site: "CERN",
  hostname: "wn001.cern.ch",
  cores: 8,
  memoryMb: 16_000,
  diskMb: 100_000,
  walltimeLeftSec: 86_400,
  multitask: true,
  agent: "test-pilot/1",
};

/** What the fake handlers saw, in order. */
export interface HandlerLog {
  hellos: { pilotId: string; resumed: boolean }[];
  messages: { pilotId: string; message: PilotReport }[];
  disconnects: { pilotId: string; reason: string }[];
  /** Every call as one line, to check ordering across sessions. */
  calls: string[];
}

/** Handlers that accept everything; tests override one to make it refuse or fail. */
export function fakeHandlers(overrides: Partial<GatewayHandlers> = {}): {
  handlers: GatewayHandlers;
  seen: HandlerLog;
} {
  const seen: HandlerLog = { hellos: [], messages: [], disconnects: [], calls: [] };
  const handlers: GatewayHandlers = {
    authenticate: async (token) => TOKENS[token] ?? null,
    onHello: async (session: PilotSession, _hello, resumed) => {
      seen.hellos.push({ pilotId: session.pilotId, resumed });
      seen.calls.push(`hello ${session.pilotId}`);
      return [];
    },
    onMessage: async (session, message) => {
      seen.messages.push({ pilotId: session.pilotId, message });
      seen.calls.push(`message ${session.pilotId} ${message.type}`);
    },
    onDisconnect: (session, reason) => {
      seen.disconnects.push({ pilotId: session.pilotId, reason });
      seen.calls.push(`disconnect ${session.pilotId}`);
    },
    ...overrides,
  };
  return { handlers, seen };
}

/** A logger that keeps every line, to check what is (and is not) logged. */
export function recordingLogger(): Logger & { lines: { level: string; fields: unknown; message: string }[] } {
  const lines: { level: string; fields: unknown; message: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface RunningGateway {
  gateway: PilotGateway;
  server: Server;
  url: string;
  seen: HandlerLog;
  connect(
    hello?: Partial<HelloDraft>,
    options?: TestPilotOptions & { token?: string },
  ): Promise<ConnectedTestPilot>;
  stop(): Promise<void>;
}

const running: RunningGateway[] = [];
const pilots: TestPilot[] = [];

afterEach(async () => {
  for (const pilot of pilots.splice(0)) pilot.socket.terminate();
  await Promise.all(running.splice(0).map((gateway) => gateway.stop()));
});

/** Keeps a test pilot to be dropped after the test. */
export function track<P extends TestPilot>(pilot: P): P {
  pilots.push(pilot);
  return pilot;
}

export const TEST_SECRET = randomBytes(32);

/** A gateway on a real HTTP server on port 0, with fake handlers unless given. */
export async function startGateway(
  options: Partial<GatewayOptions> = {},
  overrides: Partial<GatewayHandlers> = {},
): Promise<RunningGateway> {
  const { handlers, seen } = fakeHandlers(overrides);
  const gateway = new PilotGateway({ resumeSecret: TEST_SECRET, handlers, ...options });
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on("upgrade", (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `ws://127.0.0.1:${port}/pilot`;
  let stopped: Promise<void> | undefined;
  const instance: RunningGateway = {
    gateway,
    server,
    url,
    seen,
    connect: async (hello = {}, { token = CERN, ...pilotOptions } = {}) =>
      track(await connectTestPilot(url, token, { ...HELLO, ...hello }, pilotOptions)),
    stop: () => {
      stopped ??= (async () => {
        await gateway.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return stopped;
    },
  };
  running.push(instance);
  return instance;
}

/** Waits until `condition` holds, polling; fails after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Ping interval for tests with a pilot that never pongs: long enough for its
 * hello to be welcomed first on a loaded machine (it is judged after one to
 * two intervals), short enough to keep the test quick.
 */
export const SILENT_PILOT_PING_MS = 250;

export const READY = { type: "pilot.ready", thread: "primary" } as const;
