import { describe, expect, it } from "vitest";
import { ActorSlots } from "../../src/runtime/actor-slots.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { MemoryStore } from "../../src/store/memory-store.js";

const IDLE_MS = 80_000;

function slotsUsedAt(lastUsed: Record<string, number>): ActorSlots {
  const slots = new ActorSlots(0, new MemoryStore(), new KindRegistry());
  for (const [actor, lastUsedMs] of Object.entries(lastUsed))
    slots.set(actor as `${string}/${string}`, { live: null, broken: null, lastUsedMs });
  return slots;
}

const notInUse = () => false;

describe("ActorSlots.evict", () => {
  it("lets go of actors idle past the limit at each walk", () => {
    const slots = slotsUsedAt({ "job/a": 0, "job/b": 5_000, "job/c": 20_000 });
    slots.evict(85_000, IDLE_MS, 100, notInUse);
    expect([...slots.keys()]).toEqual(["job/b", "job/c"]);
    slots.evict(85_000, IDLE_MS, 100, notInUse);
    expect([...slots.keys()]).toEqual(["job/b", "job/c"]);
    // b is idle past the limit from 85,001 on: the next walk lets it go.
    slots.evict(85_001, IDLE_MS, 100, notInUse);
    expect([...slots.keys()]).toEqual(["job/c"]);
  });

  it("keeps an idle actor that is in use", () => {
    const slots = slotsUsedAt({ "job/a": 0, "job/b": 0 });
    slots.evict(100_000, IDLE_MS, 100, (actor) => actor === "job/a");
    expect([...slots.keys()]).toEqual(["job/a"]);
  });

  it("lets go of the least recently used beyond the most resident", () => {
    const slots = slotsUsedAt({ "job/a": 50_000, "job/b": 10_000, "job/c": 30_000 });
    slots.evict(60_000, IDLE_MS, 10, notInUse);
    slots.set("job/d", { live: null, broken: null, lastUsedMs: 61_000 });
    slots.evict(61_000, IDLE_MS, 2, notInUse);
    expect([...slots.keys()].sort()).toEqual(["job/a", "job/d"]);
  });
});
