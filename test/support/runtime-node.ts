/**
 * A runtime node in its own process, for tests that freeze, kill and restart
 * nodes. Configured by environment, steered over the IPC channel:
 *   -> { id, cmd: "send", ref, event, eventId? }   <- { id, ok, outcome } | { id, ok: false, code, message }
 *   -> { id, cmd: "shards" }                        <- { id, ok, shards }
 *   -> { id, cmd: "stop" }                          <- { id, ok } then exit
 * On start it sends { ready: true, nodeId, shards }.
 */
import { isRuntimeError } from "../../src/runtime/errors.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { RedisStore } from "../../src/store/redis-store.js";
import { testRegistry } from "./test-machines.js";

interface Command {
  id: number;
  cmd: "send" | "shards" | "stop";
  ref?: { kind: string; id: string };
  event?: unknown;
  eventId?: string;
}

const env = process.env;
const store = await RedisStore.connect({ url: env.PANDA_NODE_REDIS_URL!, prefix: env.PANDA_NODE_PREFIX! });
const runtime = new Runtime({
  store,
  registry: testRegistry(),
  shardCount: Number(env.PANDA_NODE_SHARDS ?? 8),
  leaseMs: Number(env.PANDA_NODE_LEASE_MS ?? 1000),
  renewEveryMs: env.PANDA_NODE_RENEW_MS ? Number(env.PANDA_NODE_RENEW_MS) : undefined,
  sweepEveryMs: Number(env.PANDA_NODE_SWEEP_MS ?? 500),
  historyCap: Number(env.PANDA_NODE_HISTORY_CAP ?? 10_000),
});
runtime.onEffect("test.notify", () => {});
await runtime.start();
process.send?.({ ready: true, nodeId: runtime.nodeId, shards: runtime.ownedShards() });

process.on("message", (raw) => {
  const command = raw as Command;
  const reply = (body: Record<string, unknown>) => process.send?.({ id: command.id, ...body });
  if (command.cmd === "shards") {
    reply({ ok: true, shards: runtime.ownedShards() });
  } else if (command.cmd === "stop") {
    void runtime
      .stop()
      .then(() => store.close())
      .then(() => {
        reply({ ok: true });
        process.exit(0);
      });
  } else if (command.cmd === "send") {
    runtime.send(command.ref!, command.event, command.eventId ? { eventId: command.eventId } : {}).then(
      (result) => reply({ ok: true, outcome: result.outcome }),
      (err: unknown) =>
        reply({
          ok: false,
          code: isRuntimeError(err) ? err.code : "UNEXPECTED",
          message: (err as Error).message,
        }),
    );
  }
});
process.on("disconnect", () => process.exit(0));
