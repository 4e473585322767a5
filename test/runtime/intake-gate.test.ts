import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { assign, setup } from "xstate";
import { emitEffectAction, fanOut, sendEventAction } from "../../src/actors/shared/effects.js";
import { effectActions } from "../../src/runtime/effects.js";
import { type AdmittedWork, type HeldDelivery, IntakeGate } from "../../src/runtime/intake-gate.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { RedisStore } from "../../src/store/redis-store.js";
import type { Store } from "../../src/store/types.js";
import { cleanupPrefix, getRedisUrl, uniquePrefix } from "../support/redis.js";

/** A delivery for the gate to hold, of its release and (if given) its drop. */
function held(release: () => unknown, drop: () => unknown = () => {}): HeldDelivery {
  return { count: 1, release: () => void release(), drop: () => void drop() };
}

/** A gate at 1,000/s that never ticks, on a clock the test moves (`clock.nowMs`). */
function gateOnClock(clock: { nowMs: number }): IntakeGate {
  return new IntakeGate(
    { tickMs: 60_000, initialPerSecond: 1_000 },
    () => 0,
    () => performance.eventLoopUtilization(),
    () => clock.nowMs,
  );
}

/** Resolves once `count` releases ran, with the order they ran in. */
function collect(gate: IntakeGate, count: number): Promise<number[]> {
  const order: number[] = [];
  return new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      gate.hold(
        held(() => {
          order.push(i);
          if (order.length === count) resolve(order);
        }),
      );
    }
  });
}

/**
 * A node that serves admitted work at a fixed pace, where admitted work joins
 * its queue only `delayMs` after release (created, brokered, committed).
 */
class SlowNode implements AdmittedWork {
  private readonly startedMs = performance.now();
  private readonly releasedAtMs: number[] = [];
  private servedSoFar = 0;
  private lastMs = this.startedMs;

  constructor(
    gate: IntakeGate,
    private readonly pace: { servedPerSecond: number; delayMs: number },
  ) {
    const hold = gate.hold.bind(gate);
    gate.hold = (delivery) =>
      hold({
        count: delivery.count,
        release: () => {
          this.releasedAtMs.push(performance.now());
          delivery.release();
        },
        drop: () => delivery.drop(),
      });
  }

  private arrived(nowMs: number): number {
    let n = 0;
    while (n < this.releasedAtMs.length && this.releasedAtMs[n]! <= nowMs - this.pace.delayMs) n++;
    return n;
  }

  private advance(): number {
    const nowMs = performance.now();
    const arrived = this.arrived(nowMs);
    this.servedSoFar = Math.min(
      arrived,
      this.servedSoFar + (this.pace.servedPerSecond * (nowMs - this.lastMs)) / 1000,
    );
    this.lastMs = nowMs;
    return arrived;
  }

  waiting(): number {
    return this.advance() - this.servedSoFar;
  }

  served(): number {
    this.advance();
    return this.servedSoFar;
  }
}

describe("IntakeGate", () => {
  it("releases everything it holds, first in first out", async () => {
    const gate = new IntakeGate({ tickMs: 5, initialPerSecond: 2_000 }, () => 0);
    const order = await collect(gate, 300);
    expect(order).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(gate.stats()).toMatchObject({ queued: 0, released: 300 });
    gate.clear();
  });

  it("cuts its rate while the node is overloaded and still lets work through", async () => {
    let backlog = 10_000;
    const gate = new IntakeGate(
      { tickMs: 5, initialPerSecond: 4_000, minPerSecond: 400, maxBacklog: 100 },
      () => backlog,
    );
    const rates: number[] = [];
    const first = new Promise<void>((resolve) => {
      for (let i = 0; i < 40; i++)
        gate.hold(
          held(() => {
            rates.push(gate.stats().perSecond);
            if (rates.length === 40) resolve();
          }),
        );
    });
    await first;
    expect(gate.stats().overloadedTicks).toBeGreaterThan(0);
    expect(Math.min(...rates)).toBeLessThan(4_000);
    // Healthy again: the rate grows back.
    backlog = 0;
    const low = gate.stats().perSecond;
    await collect(gate, 200);
    expect(gate.stats().perSecond).toBeGreaterThan(low);
    gate.clear();
  });

  it("cuts its rate while the loop is saturated and admitted work waits longer than it takes to serve", async () => {
    // A loop busy the whole time: the cumulative active time grows with the clock.
    const saturated = () => ({ idle: 0, active: performance.now(), utilization: 1 });
    const idle = () => ({ idle: performance.now(), active: 0, utilization: 0 });
    const run = async (loopTime: typeof saturated, queue: (gate: IntakeGate) => AdmittedWork) => {
      // Only the queue signal may cut: no backlog, and a tick late by any amount a loaded machine makes is no lag.
      const gate = new IntakeGate(
        {
          tickMs: 5,
          maxLagMs: 60_000,
          initialPerSecond: 4_000,
          minPerSecond: 2_000,
          maxPerSecond: 5_000,
          minQueuedWork: 10,
        },
        () => 0,
        loopTime,
      );
      gate.watchQueue(queue(gate));
      await new Promise<void>((resolve) => {
        let left = 6_000;
        for (let i = 0; i < 6_000; i++) gate.hold(held(() => --left === 0 && resolve()));
      });
      const stats = gate.stats();
      gate.clear();
      return stats;
    };
    // Nothing served: every admitted job still waits, so the queue is longer than any pace serves.
    const nothingServed = (gate: IntakeGate) => ({ waiting: () => gate.released, served: () => 0 });
    expect((await run(saturated, nothingServed)).overloadedTicks).toBeGreaterThan(0);
    // The same queue on a loop with time to spare is no overload: pilots are what it waits for.
    expect((await run(idle, nothingServed)).overloadedTicks).toBe(0);
    // Saturated but keeping up: the queue stays short.
    const keepingUp = (gate: IntakeGate) => ({
      waiting: () => Math.min(5, gate.released),
      served: () => Math.max(0, gate.released - 5),
    });
    expect((await run(saturated, keepingUp)).overloadedTicks).toBe(0);
  });

  it("drops its rate below the pace work was served at once the queue is too long", async () => {
    const saturated = () => ({ idle: 0, active: performance.now(), utilization: 1 });
    const gate = new IntakeGate(
      {
        tickMs: 5,
        maxLagMs: 60_000,
        initialPerSecond: 4_000,
        minPerSecond: 20,
        maxPerSecond: 5_000,
        minQueuedWork: 10,
      },
      () => 0,
      saturated,
    );
    // The node serves 1,000/s of what it admitted; the rest waits.
    const startedMs = performance.now();
    const servedPerSecond = 1_000;
    const servedSoFar = () =>
      Math.min(gate.released, (servedPerSecond * (performance.now() - startedMs)) / 1000);
    gate.watchQueue({ waiting: () => gate.released - servedSoFar(), served: servedSoFar });
    const seen: { perSecond: number; overloadedTicks: number }[] = [];
    // Until the first cut: more than a second's work at the highest rate, so the gate has a second to judge.
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 20_000; i++)
        gate.hold(
          held(() => {
            const { perSecond, overloadedTicks } = gate.stats();
            seen.push({ perSecond, overloadedTicks });
            if (overloadedTicks > 0) resolve();
          }),
        );
    });
    gate.clear();
    const firstCut = seen.find((s) => s.overloadedTicks > 0);
    expect(firstCut).toBeDefined();
    // One cut of a multiplicative decrease would leave it thousands per second above what was served.
    expect(firstCut!.perSecond).toBeLessThanOrEqual(servedPerSecond * 1.1);
  });

  it("keeps a node served without flooding it: its queue neither runs dry nor grows past a few seconds of work", async () => {
    const saturated = () => ({ idle: 0, active: performance.now(), utilization: 1 });
    const gate = new IntakeGate(
      { maxLagMs: 60_000, initialPerSecond: 4_000, minPerSecond: 20 },
      () => 0,
      saturated,
    );
    const node = new SlowNode(gate, { servedPerSecond: 1_000, delayMs: 300 });
    gate.watchQueue(node);
    const samples: { atMs: number; waiting: number; perSecond: number }[] = [];
    const startedMs = performance.now();
    const sampler = setInterval(
      () =>
        samples.push({
          atMs: performance.now() - startedMs,
          waiting: node.waiting(),
          perSecond: gate.stats().perSecond,
        }),
      50,
    );
    // Far more than it can serve in the run: the gate is never idle.
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 50_000; i++) gate.hold(held(() => {}));
      setTimeout(resolve, 5_000);
    });
    clearInterval(sampler);
    gate.clear();
    expect(gate.stats().overloadedTicks).toBeGreaterThan(0);
    // From the first arrivals on, work always waits (the node serves at its pace) ...
    const served = samples.filter((s) => s.atMs >= 1_000);
    expect(served.length).toBeGreaterThan(40);
    expect(Math.min(...served.map((s) => s.waiting))).toBeGreaterThan(0);
    // ... and never more than four seconds of it: the gate does not swing between the floor and a flood.
    expect(Math.max(...served.map((s) => s.waiting))).toBeLessThanOrEqual(4_000);
    expect(Math.min(...served.map((s) => s.perSecond))).toBeGreaterThan(100);
  });

  it("lets held work through between ticks as soon as the rate gives it credit", () => {
    const clock = { nowMs: 0 };
    const gate = gateOnClock(clock);
    const released: number[] = [];
    const hold = (i: number) => gate.hold(held(() => released.push(i)));
    // An idle gate lets the first through at once; the next waits for credit, not for a tick.
    hold(0);
    hold(1);
    expect(released).toEqual([0]);
    clock.nowMs = 0.5;
    hold(2);
    expect(released).toEqual([0]);
    // 3 ms at 1,000/s: three more, in the order they came.
    clock.nowMs = 3.5;
    hold(3);
    hold(4);
    expect(released).toEqual([0, 1, 2, 3]);
    // The credit never exceeds two ticks' worth, whatever time passed.
    clock.nowMs = 1_000_000;
    for (let i = 5; i < 200_000; i++) hold(i);
    expect(released).toHaveLength(4 + 120_000);
    gate.clear();
  });

  it("lets an entry of many deliveries through one at a time, in order, counted as many", () => {
    const clock = { nowMs: 0 };
    const gate = gateOnClock(clock);
    const released: string[] = [];
    const dropped: string[] = [];
    const entry = (name: string, count: number): HeldDelivery => {
      let next = 0;
      return {
        count,
        release: () => void released.push(`${name}${next++}`),
        drop: () => void dropped.push(name),
      };
    };
    gate.hold(entry("a", 3));
    gate.hold(entry("b", 2));
    gate.hold(entry("c", 4));
    gate.hold(entry("empty", 0));
    expect(released).toEqual(["a0"]);
    expect(gate.stats().queued).toBe(8);
    clock.nowMs = 4;
    gate.hold(entry("d", 1));
    expect(released).toEqual(["a0", "a1", "a2", "b0", "b1"]);
    expect(gate.stats()).toMatchObject({ queued: 5, released: 5 });
    clock.nowMs = 6;
    gate.hold(entry("e", 1));
    expect(released).toEqual(["a0", "a1", "a2", "b0", "b1", "c0", "c1"]);
    // Cleared with c partly through: c, d and e are dropped once each, whatever their counts.
    gate.clear();
    expect(dropped).toEqual(["c", "d", "e"]);
    expect(gate.stats().queued).toBe(0);
  });

  it("drops what it holds when cleared (the outbox keeps it) and opens again on the next hold", () => {
    const gate = new IntakeGate({ tickMs: 60_000, initialPerSecond: 1 }, () => 0);
    let released = 0;
    let dropped = 0;
    for (let i = 0; i < 5; i++)
      gate.hold(
        held(
          () => released++,
          () => dropped++,
        ),
      );
    expect([released, dropped]).toEqual([1, 0]);
    gate.clear();
    expect([released, dropped, gate.stats().queued]).toEqual([1, 4, 0]);
    gate.hold(held(() => released++));
    expect(released).toBe(2);
    gate.clear();
  });
});

/** `asOne`: the children are one effect the kind expands (`IntakeExpander`), not one send each. */
type SpawnContext = { children: number; asOne?: boolean };
type SpawnEvent = { type: "create"; input: SpawnContext } | { type: "stopChild"; id: string };

const SPAWN_CHILDREN = "spawn.children";

/** Created with `children`, it creates that many `child` actors through the intake lane. */
const spawner = setup({
  types: { input: {} as SpawnContext, context: {} as SpawnContext, events: {} as SpawnEvent },
  actions: {
    ...effectActions,
    spawn: fanOut<SpawnContext, SpawnEvent>(({ context, enqueue }) => {
      if (context.asOne) enqueue(emitEffectAction(SPAWN_CHILDREN, { children: context.children }));
      else
        for (let i = 0; i < context.children; i++)
          enqueue(sendEventAction({ kind: "child", id: `c${i}` }, { type: "create" }, "intake"));
    }),
  },
}).createMachine({
  id: "spawner",
  initial: "spawned",
  context: ({ input }) => ({ children: input.children, asOne: input.asOne ?? false }),
  states: {
    spawned: {
      entry: "spawn",
      on: {
        stopChild: {
          actions: {
            type: "sendEvent",
            params: ({ event }) => ({
              to: { kind: "child", id: (event as { id: string }).id },
              event: { type: "stop" },
            }),
          },
        },
      },
    },
  },
});

/** A second create applied to a live child (not dropped as a duplicate) would count. */
const child = setup({
  types: { context: {} as { creates: number }, events: {} as { type: "create" } | { type: "stop" } },
}).createMachine({
  id: "child",
  initial: "alive",
  context: { creates: 1 },
  states: {
    alive: {
      on: { stop: "stopped", create: { actions: assign({ creates: ({ context }) => context.creates + 1 }) } },
    },
    stopped: { type: "final" },
  },
});

const registry = () =>
  new KindRegistry()
    .register({
      kind: "spawner",
      machine: spawner,
      version: 1,
      expansions: {
        [SPAWN_CHILDREN]: (data, effectId) => {
          const { children } = data as { children: number };
          return {
            count: children,
            target: (i) => ({ kind: "child", id: `c${i}` }),
            indexOf: (id) => {
              const i = /^c(0|[1-9][0-9]*)$/.test(id) ? Number(id.slice(1)) : -1;
              return i < children ? i : -1;
            },
            build: (i) => ({ event: { type: "create" }, eventId: `${effectId}/${i}` }),
          };
        },
      },
    })
    // No intakeGroupOf: a send to a child is checked against every held expansion that creates children.
    .register({ kind: "child", machine: child, version: 1 });

/** How many children had a create applied more than once. */
async function createdTwice(runtime: Runtime, count: number): Promise<number> {
  let twice = 0;
  for (let i = 0; i < count; i++) {
    const state = await runtime.readState({ kind: "child", id: `c${i}` });
    if (state && (state.context as { creates: number }).creates !== 1) twice++;
  }
  return twice;
}

async function childrenAlive(runtime: Runtime, count: number): Promise<number> {
  let alive = 0;
  for (let i = 0; i < count; i++) if (await runtime.readState({ kind: "child", id: `c${i}` })) alive++;
  return alive;
}

/** Resolves once `count` children were created on `runtime`. */
function childrenCreated(runtime: Runtime, count: number): Promise<void> {
  const created = new Set<string>();
  return new Promise((resolve) => {
    const off = runtime.onTransitions((transitions) => {
      for (const t of transitions)
        if (t.actor.startsWith("child/") && t.entry.from === null) created.add(t.actor);
      if (created.size >= count) {
        off();
        resolve();
      }
    });
  });
}

for (const [name, makeStore] of [
  ["MemoryStore", async () => ({ store: new MemoryStore() as Store, cleanup: async () => {} })],
  [
    "RedisStore",
    async () => {
      const url = await getRedisUrl();
      const prefix = uniquePrefix("intake");
      const store = await RedisStore.connect({ url, prefix });
      return {
        store: store as Store,
        cleanup: async () => {
          await store.close();
          const redis = new Redis(url);
          await cleanupPrefix(redis, prefix);
          redis.disconnect();
        },
      };
    },
  ],
] as const)
  for (const asOne of [false, true]) {
    describe(`admission control on ${name}, ${asOne ? "children as one expanded effect" : "one send per child"}`, () => {
      it("creates every child of an intake burst, paced by the gate", async () => {
        const { store, cleanup } = await makeStore();
        const runtime = new Runtime({ store, registry: registry(), shardCount: 4, intake: { tickMs: 5 } });
        await runtime.start();
        const created = childrenCreated(runtime, 500);
        await runtime.send({ kind: "spawner", id: "s" }, { type: "create", input: { children: 500, asOne } });
        await created;
        expect(await childrenAlive(runtime, 500)).toBe(500);
        expect(runtime.stats().intake).toMatchObject({ queued: 0, released: 500 });
        expect(await createdTwice(runtime, 500)).toBe(0);
        await runtime.stop();
        await cleanup();
      });

      it("holds a send to an actor whose creation it holds behind that creation", async () => {
        const { store, cleanup } = await makeStore();
        const runtime = new Runtime({
          store,
          registry: registry(),
          shardCount: 4,
          intake: { tickMs: 20, initialPerSecond: 20 },
        });
        await runtime.start();
        await runtime.send({ kind: "spawner", id: "s" }, { type: "create", input: { children: 50, asOne } });
        expect(await runtime.readState({ kind: "child", id: "c49" })).toBeNull();
        const stopped = runtime.waitForTransition(
          { kind: "child", id: "c49" },
          (t) => t.entry.to === "stopped",
        );
        await runtime.send({ kind: "spawner", id: "s" }, { type: "stopChild", id: "c49" });
        await stopped;
        expect(await runtime.readState({ kind: "child", id: "c49" })).toMatchObject({ state: "stopped" });
        await runtime.stop();
        await cleanup();
      });

      it("does not hold a send to a child already created while later ones are held", async () => {
        const { store, cleanup } = await makeStore();
        const runtime = new Runtime({
          store,
          registry: registry(),
          shardCount: 4,
          // One child a minute after the first: c0 exists, c1 to c49 are held the whole test.
          intake: { tickMs: 60_000, initialPerSecond: 1, maxPerSecond: 1 },
        });
        await runtime.start();
        const first = childrenCreated(runtime, 1);
        await runtime.send({ kind: "spawner", id: "s" }, { type: "create", input: { children: 50, asOne } });
        await first;
        expect(runtime.intakeQueued()).toBe(49);
        const stopped = runtime.waitForTransition(
          { kind: "child", id: "c0" },
          (t) => t.entry.to === "stopped",
        );
        await runtime.send({ kind: "spawner", id: "s" }, { type: "stopChild", id: "c0" });
        await stopped;
        expect(runtime.intakeQueued()).toBe(49);
        expect(await runtime.readState({ kind: "child", id: "c1" })).toBeNull();
        await runtime.stop();
        await cleanup();
      });

      it("loses nothing it held when the node stops: the next node delivers it from the outbox", async () => {
        const { store, cleanup } = await makeStore();
        // A gate that lets one through and then waits a minute: the rest is held when the node stops.
        const first = new Runtime({
          store,
          registry: registry(),
          shardCount: 4,
          intake: { tickMs: 60_000, initialPerSecond: 1 },
        });
        await first.start();
        await first.send({ kind: "spawner", id: "s" }, { type: "create", input: { children: 50, asOne } });
        expect(first.intakeQueued()).toBeGreaterThan(0);
        await first.stop();
        const createdBefore = await childrenAlive(first, 50);
        expect(createdBefore).toBeLessThan(50);

        const second = new Runtime({ store, registry: registry(), shardCount: 4, intake: { tickMs: 5 } });
        const created = childrenCreated(second, 50 - createdBefore);
        await second.start();
        await created;
        expect(await childrenAlive(second, 50)).toBe(50);
        expect(await createdTwice(second, 50)).toBe(0);
        await second.stop();
        await cleanup();
      });
    });
  }
