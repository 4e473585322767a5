import { afterEach, describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/runtime.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { testRegistry } from "../support/test-machines.js";

describe("runtime on MemoryStore", () => {
  let runtime: Runtime;
  afterEach(async () => {
    await runtime?.stop();
  });

  it("creates, transitions and records history", async () => {
    runtime = new Runtime({ store: new MemoryStore(), registry: testRegistry(), shardCount: 8 });
    await runtime.start();
    expect(runtime.ownedShards()).toHaveLength(8);
    const ref = { kind: "counter", id: "a" };
    const created = await runtime.send(ref, { type: "create", input: {} });
    expect(created.outcome).toBe("committed");
    await Promise.all([1, 2, 3].map((n) => runtime.send(ref, { type: "inc", by: n })));
    const view = await runtime.inspect(ref);
    expect(view?.context).toMatchObject({ count: 6 });
    expect(view?.version).toBe(4);
    expect(view?.history.map((h) => h.event.type)).toEqual(["create", "inc", "inc", "inc"]);
  });

  it("fires a durable timer", async () => {
    runtime = new Runtime({ store: new MemoryStore(), registry: testRegistry(), shardCount: 4 });
    await runtime.start();
    const ref = { kind: "counter", id: "t" };
    await runtime.send(ref, { type: "create" });
    const fired = runtime.waitForTransition(ref, (t) => t.entry.cause === "timer");
    await runtime.send(ref, { type: "arm", delayMs: 20 });
    await fired;
    const v = await runtime.inspect(ref);
    expect(v?.state).toBe("counting");
    expect(v?.context).toMatchObject({ ticks: 1 });
  });

  it("delivers send effects across actors", async () => {
    runtime = new Runtime({ store: new MemoryStore(), registry: testRegistry(), shardCount: 4 });
    await runtime.start();
    await runtime.send({ kind: "counter", id: "b" }, { type: "create" });
    await runtime.send({ kind: "counter", id: "a" }, { type: "create", input: { partner: "b" } });
    const secondPing = runtime.waitForTransition(
      { kind: "counter", id: "b" },
      (t) => (t.state?.context as { pings: number } | undefined)?.pings === 2,
    );
    await runtime.send({ kind: "counter", id: "a" }, { type: "pingPartner" });
    await runtime.send({ kind: "counter", id: "a" }, { type: "pingPartner" });
    await secondPing;
    const b = await runtime.inspect({ kind: "counter", id: "b" });
    expect(b?.context).toMatchObject({ pings: 2 });
  });
});
