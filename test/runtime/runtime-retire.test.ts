import { afterEach, describe, expect, it } from "vitest";
import { actorKeyOf, shardOf } from "../../src/runtime/actor-ref.js";
import { isRuntimeError } from "../../src/runtime/errors.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { testRegistry } from "../support/test-machines.js";

const SHARDS = 4;
const ref = (id: string) => ({ kind: "counter", id });

describe("Runtime.retire and MemoryStore.forget", () => {
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const runtime of runtimes.splice(0)) await runtime.stop();
  });

  async function boot() {
    const store = new MemoryStore();
    const runtime = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS });
    await runtime.start();
    runtimes.push(runtime);
    return { store, runtime };
  }

  it("drops a retired actor from memory and, forgotten, from the store with its history", async () => {
    const { store, runtime } = await boot();
    await runtime.send(ref("a"), { type: "create" });
    await runtime.send(ref("a"), { type: "inc", by: 2 });
    await runtime.send(ref("b"), { type: "create" });
    expect(runtime.residentState(ref("a"))).toBeDefined();
    expect(runtime.retire([ref("a")])).toEqual([]);
    expect(runtime.residentState(ref("a"))).toBeUndefined();
    // Only out of memory: the store still has it, and reading it back restores it.
    expect((await runtime.readState(ref("a")))?.context).toMatchObject({ count: 2 });
    const key = actorKeyOf(ref("a"));
    store.forget(shardOf(key, SHARDS), [key]);
    expect(await runtime.readState(ref("a"))).toBeNull();
    expect(await store.readHistory(shardOf(key, SHARDS), key, 10)).toEqual([]);
    const err = await runtime.send(ref("a"), { type: "inc", by: 1 }).catch((e: unknown) => e);
    expect(isRuntimeError(err) && err.code).toBe("ACTOR_NOT_FOUND");
    // Others are untouched.
    expect((await runtime.readState(ref("b")))?.version).toBe(1);
  });

  it("keeps an actor that has events queued, and says so", async () => {
    const { runtime } = await boot();
    await runtime.send(ref("a"), { type: "create" });
    const pending = runtime.send(ref("a"), { type: "inc", by: 1 });
    expect(runtime.retire([ref("a")])).toEqual([ref("a")]);
    await pending;
    expect(runtime.residentState(ref("a"))?.context).toMatchObject({ count: 1 });
  });
});
