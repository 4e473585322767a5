import { afterEach, describe, expect, it } from "vitest";
import { assign, log, setup } from "xstate";
import { encode } from "../../src/protocol/codec.js";
import { actorKeyOf, shardOf } from "../../src/runtime/actor-ref.js";
import { effectActions } from "../../src/runtime/effects.js";
import { isRuntimeError, type RuntimeErrorCode } from "../../src/runtime/errors.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { Runtime, type RuntimeOptions } from "../../src/runtime/runtime.js";
import type { Store } from "../../src/store/types.js";
import { counterMachine, testRegistry } from "../support/test-machines.js";

export type StoreFactory = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const SHARDS = 8;
const ref = (id: string) => ({ kind: "counter", id });

async function expectRuntimeError(promise: Promise<unknown>, code: RuntimeErrorCode): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isRuntimeError(err), `expected RuntimeError ${code}, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

/** Runtime behaviour that must hold on every store. */
export function describeRuntimeBehaviour(storeName: string, makeStore: StoreFactory): void {
  describe(`runtime on ${storeName}`, () => {
    const opened: { runtime: Runtime; cleanup?: () => Promise<void> }[] = [];

    async function boot(options: Partial<RuntimeOptions> = {}, shared?: Store) {
      let store = shared;
      let cleanup: (() => Promise<void>) | undefined;
      if (!store) {
        const made = await makeStore();
        store = made.store;
        cleanup = made.cleanup;
      }
      const runtime = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS, ...options });
      await runtime.start();
      opened.push({ runtime, cleanup });
      return runtime;
    }

    afterEach(async () => {
      for (const { runtime } of opened) await runtime.stop();
      for (const { cleanup } of opened) await cleanup?.();
      opened.length = 0;
    });

    async function fenceFor(runtime: Runtime, id: string) {
      const shard = shardOf(actorKeyOf(ref(id)), SHARDS);
      const lease = await runtime.store.readLease(shard);
      return { shard, fence: { owner: lease!.owner, epoch: lease!.epoch } };
    }

    it("creates an actor, chains versions and keeps every transition in history", async () => {
      const runtime = await boot();
      const created = await runtime.send(ref("a"), { type: "create" });
      expect(created).toMatchObject({ outcome: "committed", version: 1 });
      for (const by of [1, 2, 3]) await runtime.send(ref("a"), { type: "inc", by });
      const view = await runtime.inspect(ref("a"));
      expect(view).toMatchObject({ version: 4, state: "counting", status: "active", context: { count: 6 } });
      expect(view!.history.map((h) => [h.v, h.event.type, h.from, h.to])).toEqual([
        [1, "create", null, "counting"],
        [2, "inc", "counting", "counting"],
        [3, "inc", "counting", "counting"],
        [4, "inc", "counting", "counting"],
      ]);
    });

    it("reads a resident actor as last committed, never a commit in flight, and the store's copy elsewhere", async () => {
      const made = await makeStore();
      const store = made.store;
      let release: (() => void) | null = null;
      const commitMany = store.commitMany.bind(store);
      // Holds the next commit until released: the batch is planned, its write not yet acknowledged.
      let holdNext = false;
      store.commitMany = async (...args) => {
        if (holdNext) {
          holdNext = false;
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        }
        return commitMany(...args);
      };
      const runtime = await boot({}, store);
      opened.push({ runtime: await boot({ clientOnly: true }, store), cleanup: made.cleanup });
      const reader = opened[opened.length - 1]!.runtime;
      await runtime.send(ref("a"), { type: "create" });
      await runtime.send(ref("a"), { type: "inc", by: 2 });
      const stored = await runtime.readState(ref("a"));
      expect(await runtime.readState(ref("a"), { resident: true })).toEqual(stored);
      holdNext = true;
      const inFlight = runtime.send(ref("a"), { type: "inc", by: 5 });
      await expect.poll(() => release !== null).toBe(true);
      expect(await runtime.readState(ref("a"), { resident: true })).toMatchObject({
        version: 2,
        context: { count: 2 },
      });
      (release as unknown as () => void)();
      await inFlight;
      expect(await runtime.readState(ref("a"), { resident: true })).toMatchObject({
        version: 3,
        context: { count: 7 },
      });
      // A node that holds no shard reads the store.
      expect(await reader.readState(ref("a"), { resident: true })).toMatchObject({
        version: 3,
        context: { count: 7 },
      });
      expect(await runtime.readState(ref("nobody"), { resident: true })).toBeNull();
    });

    it("takes over a shard's inbox backlog before any direct send: a create queued earlier applies first", async () => {
      const made = await makeStore();
      const store = made.store;
      const client = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS, clientOnly: true });
      await client.start();
      opened.push({ runtime: client, cleanup: made.cleanup });
      expect(await client.send(ref("b"), { type: "create" })).toEqual({ outcome: "queued" });
      // The node's first read of the inbox waits until released: the backlog is known but not yet read.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let reading = false;
      const readInbox = store.readInbox.bind(store);
      store.readInbox = async (...args) => {
        reading = true;
        await gate;
        return readInbox(...args);
      };
      const node = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS });
      opened.push({ runtime: node });
      const started = node.start();
      await expect.poll(() => reading).toBe(true);
      // A send caused after the create was accepted must not overtake it: it waits behind the backlog.
      const inc = node.send(ref("b"), { type: "inc", by: 5 });
      release();
      await started;
      expect(await inc).toMatchObject({ outcome: "committed", version: 2 });
      expect((await node.readState(ref("b")))?.context).toMatchObject({ count: 5 });
      const history = (await node.inspect(ref("b")))!.history;
      expect(history.map((h) => [h.event.type, h.refused?.code ?? null])).toEqual([
        ["create", null],
        ["inc", null],
      ]);
    });

    it("refuses bad input with typed errors and leaves stored state untouched", async () => {
      const runtime = await boot();
      await runtime.send(ref("a"), { type: "create" });
      await runtime.send(ref("a"), { type: "inc" });
      await expectRuntimeError(
        runtime.send({ kind: "nosuchkind", id: "a" }, { type: "inc" }),
        "UNKNOWN_KIND",
      );
      await expectRuntimeError(
        runtime.send({ kind: "counter", id: "a/b" }, { type: "inc" }),
        "BAD_ACTOR_REF",
      );
      await expectRuntimeError(runtime.send({ kind: "counter", id: "" }, { type: "inc" }), "BAD_ACTOR_REF");
      await expectRuntimeError(runtime.send(ref("a"), { kind: "no type" }), "BAD_EVENT");
      await expectRuntimeError(runtime.send(ref("a"), "inc"), "BAD_EVENT");
      await expectRuntimeError(runtime.send(ref("a"), { type: "disarm" }), "EVENT_NOT_ACCEPTED");
      await expectRuntimeError(runtime.send(ref("a"), { type: "create" }), "ACTOR_EXISTS");
      await expectRuntimeError(runtime.send(ref("ghost"), { type: "inc" }), "ACTOR_NOT_FOUND");
      const view = await runtime.inspect(ref("a"));
      expect(view).toMatchObject({ version: 2, state: "counting", context: { count: 1 } });
      // Refusals are recorded for operators, without changing state or version.
      const refused = view!.history.filter((h) => h.refused);
      expect(refused.map((h) => h.refused!.code)).toEqual(["EVENT_NOT_ACCEPTED", "ACTOR_EXISTS"]);
      expect(refused.every((h) => h.v === 2)).toBe(true);
      expect(await runtime.inspect(ref("ghost"))).toBeNull();
    });

    it("refuses the create of an actor it does not hold in memory but the store does, and goes on with it", async () => {
      const made = await makeStore();
      const first = new Runtime({ store: made.store, registry: testRegistry(), shardCount: SHARDS });
      opened.push({ runtime: first, cleanup: made.cleanup });
      await first.start();
      await first.send(ref("a"), { type: "create" });
      await first.send(ref("a"), { type: "inc", by: 5 });
      await first.stop();
      // A new node holds nothing: a create is taken for a new actor without a read, and the commit finds it.
      const runtime = await boot({}, made.store);
      await expectRuntimeError(runtime.send(ref("a"), { type: "create" }), "ACTOR_EXISTS");
      await runtime.send(ref("a"), { type: "inc", by: 1 });
      const view = await runtime.inspect(ref("a"));
      expect(view).toMatchObject({ version: 3, context: { count: 6 } });
      expect(view!.history.map((h) => [h.v, h.event.type, h.refused?.code ?? null])).toEqual([
        [1, "create", null],
        [2, "inc", null],
        [2, "create", "ACTOR_EXISTS"],
        [3, "inc", null],
      ]);
    });

    it("keeps final states final", async () => {
      const runtime = await boot();
      await runtime.send(ref("f"), { type: "create" });
      await runtime.send(ref("f"), { type: "finish" });
      await expectRuntimeError(runtime.send(ref("f"), { type: "inc" }), "EVENT_NOT_ACCEPTED");
      expect(await runtime.inspect(ref("f"))).toMatchObject({
        state: "finished",
        status: "done",
        version: 2,
      });
    });

    it("refuses corrupt, foreign and too-new snapshots without touching them", async () => {
      const runtime = await boot();
      const cases: [string, Buffer, RuntimeErrorCode][] = [
        ["garbage", Buffer.from([0xc1, 0xff, 0x00, 0x13]), "CORRUPT_SNAPSHOT"],
        ["shape", encode({ hello: "world" }), "CORRUPT_SNAPSHOT"],
        [
          "foreign",
          encode({ k: "job", mv: 1, s: { value: "running", context: {}, status: "active" } }),
          "CORRUPT_SNAPSHOT",
        ],
        [
          "badstate",
          encode({ k: "counter", mv: 1, s: { value: "nowhere", context: {}, status: "active" } }),
          "CORRUPT_SNAPSHOT",
        ],
        [
          "future",
          encode({ k: "counter", mv: 99, s: { value: "counting", context: {}, status: "active" } }),
          "UNSUPPORTED_MACHINE_VERSION",
        ],
        [
          "errored",
          encode({ k: "counter", mv: 1, s: { value: "counting", context: {}, status: "error" } }),
          "CORRUPT_SNAPSHOT",
        ],
      ];
      for (const [id, bytes, code] of cases) {
        const { shard, fence } = await fenceFor(runtime, id);
        await runtime.store.importActor(shard, fence, actorKeyOf(ref(id)), 7, bytes);
        await expectRuntimeError(runtime.send(ref(id), { type: "inc" }), code);
        await expectRuntimeError(runtime.inspect(ref(id)), code);
        const [stored] = await runtime.store.loadActors(shard, [actorKeyOf(ref(id))]);
        expect(stored?.version).toBe(7);
        expect(Buffer.compare(stored!.snapshot, bytes)).toBe(0);
      }
    });

    it("drops a duplicate of an event sent with the same id", async () => {
      const runtime = await boot();
      await runtime.send(ref("d"), { type: "create" }, { eventId: "create-d" });
      expect(await runtime.send(ref("d"), { type: "create" }, { eventId: "create-d" })).toEqual({
        outcome: "duplicate",
      });
      await runtime.send(ref("d"), { type: "inc" }, { eventId: "inc-1" });
      expect(await runtime.send(ref("d"), { type: "inc" }, { eventId: "inc-1" })).toEqual({
        outcome: "duplicate",
      });
      expect(await runtime.inspect(ref("d"))).toMatchObject({ version: 2, context: { count: 1 } });
    });

    it("commits events for many actors of a shard in one group commit", async () => {
      const runtime = await boot();
      const sizes: number[] = [];
      runtime.onCommit((_shard, records) => sizes.push(records));
      await Promise.all(
        Array.from({ length: 400 }, (_, i) => runtime.send(ref(`g${i}`), { type: "create" })),
      );
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      expect(sizes.length).toBeLessThan(400);
      // Events for one actor queued together keep their order inside a batch.
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => runtime.send(ref("g0"), { type: "inc", tag: `t${k}` })),
      );
      const g0 = await runtime.inspect(ref("g0"));
      expect((g0!.context as { seen: string }).seen).toBe(
        Array.from({ length: 20 }, (_, k) => `t${k},`).join(""),
      );
    });

    it("caps history", async () => {
      const runtime = await boot({ historyCap: 5 });
      await runtime.send(ref("h"), { type: "create" });
      for (let i = 0; i < 9; i++) await runtime.send(ref("h"), { type: "inc", tag: `n${i}` });
      const view = await runtime.inspect(ref("h"));
      expect(view!.history.map((h) => h.v)).toEqual([6, 7, 8, 9, 10]);
    });

    /** Six events sent at once, each twice with its id: they share records, and the repeats split them. */
    async function sendEachTwice(runtime: Runtime, id: string) {
      await runtime.send(ref(id), { type: "create" });
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, k) =>
          runtime.send(ref(id), { type: "inc", tag: `t${k >> 1}` }, { eventId: `inc-${k >> 1}` }),
        ),
      );
      expect(results.filter((r) => r.outcome === "duplicate")).toHaveLength(6);
      const view = await runtime.inspect(ref(id));
      expect((view!.context as { seen: string }).seen).toBe(
        Array.from({ length: 6 }, (_, k) => `t${k},`).join(""),
      );
      expect(view!.version).toBe(7);
      return view!;
    }

    it("applies events sent at once with repeated ids once each, in order", async () => {
      // Each repeat makes the events behind it plan again; that used to count as their own conflicts.
      const view = await sendEachTwice(await boot(), "r");
      expect(view.history.map((h) => h.v)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });

    it("keeps no history with a cap of 0", async () => {
      const view = await sendEachTwice(await boot({ historyCap: 0 }), "n");
      expect(view.history).toEqual([]);
    });

    it("fires a durable timer set before a restart exactly once after it", async () => {
      const { store, cleanup } = await makeStore();
      const first = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS });
      await first.start();
      await first.send(ref("t"), { type: "create" });
      await first.send(ref("t"), { type: "arm", delayMs: 150 });
      await first.stop();
      const second = await boot({}, store);
      opened[opened.length - 1]!.cleanup = cleanup;
      const view = await second.inspect(ref("t"));
      if (view?.state === "armed") {
        await second.waitForTransition(ref("t"), (t) => t.entry.cause === "timer");
      }
      const after = await second.inspect(ref("t"));
      expect(after).toMatchObject({ state: "counting", context: { ticks: 1 } });
      expect(after!.history.filter((h) => h.cause === "timer")).toHaveLength(1);
    });

    it("cancels a timer when its state is left", async () => {
      const runtime = await boot();
      await runtime.send(ref("c"), { type: "create" });
      await runtime.send(ref("c"), { type: "arm", delayMs: 60_000 });
      const shard = shardOf(actorKeyOf(ref("c")), SHARDS);
      expect(await runtime.store.nextTimerDueMs(shard)).not.toBeNull();
      await runtime.send(ref("c"), { type: "disarm" });
      expect(await runtime.store.nextTimerDueMs(shard)).toBeNull();
    });

    it("delivers emitted effects to their handler and retries a failing handler", async () => {
      const runtime = await boot({ sweepEveryMs: 50 });
      const seen: { note: string; effectId: string }[] = [];
      let failures = 1;
      const delivered = new Promise<void>((resolve) => {
        runtime.onEffect("test.notify", (data, { effectId }) => {
          if (failures-- > 0) throw new Error("handler down");
          seen.push({ note: (data as { note: string }).note, effectId });
          resolve();
        });
      });
      await runtime.send(ref("n"), { type: "create" });
      await runtime.send(ref("n"), { type: "notify", note: "hello" });
      await delivered;
      expect(seen.map((s) => s.note)).toEqual(["hello"]);
      const shard = shardOf(actorKeyOf(ref("n")), SHARDS);
      await new Promise((r) => setImmediate(r));
      await runtime.send(ref("n"), { type: "inc" });
      // The acknowledgement is batched: await the next sweep to see the outbox drained.
      for (let i = 0; i < 50 && (await runtime.store.readOutbox(shard, 10)).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await runtime.store.readOutbox(shard, 10)).toEqual([]);
    });

    it("does not deliver an effect again from an outbox read that answers after its delivery was acknowledged", async () => {
      const made = await makeStore();
      const store = made.store;
      const readOutbox = store.readOutbox.bind(store);
      const readsAsked: (() => void)[] = [];
      // Every read sees the outbox as it is when asked, and answers late: after the delivery in flight acks.
      store.readOutbox = async (shard, limit) => {
        const entries = await readOutbox(shard, limit);
        for (const asked of readsAsked.splice(0)) asked();
        await new Promise((r) => setTimeout(r, 150));
        return entries;
      };
      const runtime = await boot({ sweepEveryMs: 10 }, store);
      opened.push({ runtime, cleanup: made.cleanup });
      const calls: string[] = [];
      let handled!: () => void;
      const done = new Promise<void>((resolve) => {
        handled = resolve;
      });
      runtime.onEffect("test.notify", async (_data, { effectId }) => {
        calls.push(effectId);
        // Finishes once a sweep has read the outbox with the effect in it.
        await new Promise<void>((resolve) => readsAsked.push(resolve));
        handled();
      });
      await runtime.send(ref("r"), { type: "create" });
      await runtime.send(ref("r"), { type: "notify", note: "once" });
      await done;
      const shard = shardOf(actorKeyOf(ref("r")), SHARDS);
      for (let i = 0; i < 50 && (await readOutbox(shard, 10)).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await readOutbox(shard, 10)).toEqual([]);
      // The reads sent while the handler ran have answered by now.
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toHaveLength(1);
    });

    it("gathers acknowledgements for ackOutboxAfterMs, delivering nothing twice meanwhile, and writes them at stop", async () => {
      const runtime = await boot({ sweepEveryMs: 10, ackOutboxAfterMs: 60_000 });
      const calls: string[] = [];
      const delivered = new Promise<void>((resolve) => {
        runtime.onEffect("test.notify", (_data, { effectId }) => {
          calls.push(effectId);
          resolve();
        });
      });
      await runtime.send(ref("g"), { type: "create" });
      await runtime.send(ref("g"), { type: "notify", note: "gathered" });
      await delivered;
      const shard = shardOf(actorKeyOf(ref("g")), SHARDS);
      // Sweeps come and go; the effect waits for its acknowledgement, in flight.
      await new Promise((r) => setTimeout(r, 100));
      expect(calls).toHaveLength(1);
      expect((await runtime.store.readOutbox(shard, 10)).map((e) => e.effectId)).toEqual(calls);
      await runtime.stop();
      expect(await runtime.store.readOutbox(shard, 10)).toEqual([]);
    });

    it("refuses a machine that tries to run an action itself", async () => {
      const impure = setup({}).createMachine({
        id: "impure",
        initial: "a",
        states: { a: { on: { go: { target: "b", actions: log("side effect") } } }, b: {} },
      });
      const { store, cleanup } = await makeStore();
      const registry = new KindRegistry().register({ kind: "impure", machine: impure, version: 1 });
      const runtime = new Runtime({ store, registry, shardCount: SHARDS });
      await runtime.start();
      opened.push({ runtime, cleanup });
      await runtime.send({ kind: "impure", id: "x" }, { type: "create" });
      await expectRuntimeError(runtime.send({ kind: "impure", id: "x" }, { type: "go" }), "IMPURE_MACHINE");
      expect(await runtime.inspect({ kind: "impure", id: "x" })).toMatchObject({ state: "a", version: 1 });
    });

    it("commits counters with transitions and sums them over the shards", async () => {
      const tally = setup({
        types: { events: {} as { type: "create" } | { type: "move"; from: string; to: string } },
        actions: { ...effectActions },
      }).createMachine({
        id: "tally",
        initial: "on",
        states: {
          on: {
            entry: { type: "count", params: { counters: [{ name: "seen:all", delta: 1 }] } },
            on: {
              move: {
                actions: {
                  type: "count",
                  params: ({ event }) => ({
                    counters: [
                      { name: `at:${event.from}`, delta: -1 },
                      { name: `at:${event.to}`, delta: 1 },
                    ],
                  }),
                },
              },
            },
          },
        },
      });
      const { store, cleanup } = await makeStore();
      const registry = new KindRegistry().register({ kind: "tally", machine: tally, version: 1 });
      const runtime = new Runtime({ store, registry, shardCount: SHARDS });
      await runtime.start();
      opened.push({ runtime, cleanup });
      const ids = Array.from({ length: 20 }, (_, i) => `t${i}`);
      await Promise.all(ids.map((id) => runtime.send({ kind: "tally", id }, { type: "create" })));
      await Promise.all(
        ids.map((id) => runtime.send({ kind: "tally", id }, { type: "move", from: "a", to: "b" })),
      );
      // A refused event moves no counter: the actor does not exist.
      await expectRuntimeError(
        runtime.send({ kind: "tally", id: "ghost" }, { type: "move", from: "a", to: "b" }),
        "ACTOR_NOT_FOUND",
      );
      const spread = new Set(ids.map((id) => shardOf(actorKeyOf({ kind: "tally", id }), SHARDS)));
      expect(spread.size).toBeGreaterThan(1);
      expect(await runtime.readCounters()).toEqual(
        new Map([
          ["seen:all", 20],
          ["at:a", -20],
          ["at:b", 20],
        ]),
      );
      expect(await runtime.readCounters("at:")).toEqual(
        new Map([
          ["at:a", -20],
          ["at:b", 20],
        ]),
      );
    });

    it("migrates a snapshot from an older machine version on load", async () => {
      const v2 = setup({
        types: { context: {} as { total: number } },
        actions: { ...effectActions },
      }).createMachine({
        id: "counter",
        initial: "counting",
        context: { total: 0 },
        states: {
          counting: { on: { inc: { actions: assign({ total: ({ context }) => context.total + 1 }) } } },
        },
      });
      const { store, cleanup } = await makeStore();
      const old = new Runtime({ store, registry: testRegistry(), shardCount: SHARDS });
      await old.start();
      await old.send(ref("m"), { type: "create" });
      await old.send(ref("m"), { type: "inc", by: 5 });
      await old.stop();
      const registry = new KindRegistry().register({
        kind: "counter",
        machine: v2,
        version: 2,
        minVersion: 1,
        migrate: (_from, state) => ({
          ...state,
          context: { total: (state.context as { count: number }).count },
        }),
      });
      const runtime = new Runtime({ store, registry, shardCount: SHARDS });
      await runtime.start();
      opened.push({ runtime, cleanup });
      await runtime.send(ref("m"), { type: "inc" });
      expect(await runtime.inspect(ref("m"))).toMatchObject({ version: 3, context: { total: 6 } });
      expect(counterMachine.id).toBe("counter");
    });

    describe("projections", () => {
      /** A ticket that waits in a lane's queue while open and is counted there: its state says where. */
      const ticket = setup({
        types: {
          context: {} as { lane: string; priority: number },
          input: {} as { lane: string; priority: number },
          events: {} as
            | { type: "create"; input: { lane: string; priority: number } }
            | { type: "move"; lane: string }
            | { type: "take" }
            | { type: "close" },
        },
      }).createMachine({
        id: "ticket",
        initial: "open",
        context: ({ input }) => input,
        states: {
          open: {
            on: {
              move: { actions: assign({ lane: ({ event }) => event.lane }) },
              take: "taken",
              close: "closed",
            },
          },
          taken: { on: { close: "closed" } },
          closed: { type: "final" },
        },
      });
      const projections = (version: number) => ({
        version,
        counterPrefixes: ["tickets:"],
        of(state: { value: unknown; context: { lane: string; priority: number } }, id: string) {
          const open = state.value === "open";
          return {
            index: open
              ? [{ key: `lane:${state.context.lane}`, member: id, score: state.context.priority }]
              : [],
            counters: state.value === "closed" ? [] : [{ name: `tickets:${String(state.value)}`, value: 1 }],
          };
        },
      });
      const registryWith = (version: number | null) =>
        new KindRegistry().register({
          kind: "ticket",
          machine: ticket,
          version: 1,
          ...(version === null ? {} : { projections: projections(version) }),
        });
      const t = (id: string) => ({ kind: "ticket", id });
      const lane = async (runtime: Runtime, name: string) =>
        (await runtime.readIndex(`lane:${name}`, 0, 100)).map((e) => `${e.member}:${e.score}`);

      it("writes indexes and counters with the transitions that change them, and mirrors them on the node", async () => {
        const { store, cleanup } = await makeStore();
        const runtime = new Runtime({ store, registry: registryWith(1), shardCount: SHARDS });
        await runtime.start();
        opened.push({ runtime, cleanup });
        const changes: string[] = [];
        runtime.local.onChange((key, member, score) => changes.push(`${key} ${member} ${score}`));
        for (const [id, priority] of [
          ["a", 3],
          ["b", 1],
          ["c", 2],
        ] as const) {
          await runtime.send(t(id), { type: "create", input: { lane: "red", priority } });
        }
        expect(await lane(runtime, "red")).toEqual(["b:1", "c:2", "a:3"]);
        await runtime.send(t("c"), { type: "move", lane: "blue" });
        await runtime.send(t("a"), { type: "take" });
        expect(await lane(runtime, "red")).toEqual(["b:1"]);
        expect(await lane(runtime, "blue")).toEqual(["c:2"]);
        expect(changes).toContain("lane:red c null");
        expect(changes).toContain("lane:blue c 2");
        expect(await runtime.readCounters("tickets:")).toEqual(
          new Map([
            ["tickets:open", 2],
            ["tickets:taken", 1],
          ]),
        );
        // What the node holds in memory is what the store holds: every shard is this node's.
        expect(runtime.ownsAllShards()).toBe(true);
        expect(runtime.local.counters("tickets:")).toEqual(await runtime.readCounters("tickets:"));
        expect(runtime.local.range("lane:red", 0, 10)).toEqual([{ member: "b", score: 1 }]);
        await runtime.send(t("a"), { type: "close" });
        expect(runtime.local.counter("tickets:taken")).toBe(0);
      });

      it("retries a commit that landed with its answer lost as applied, and mirrors what the store holds", async () => {
        const { store, cleanup } = await makeStore();
        const runtime = new Runtime({ store, registry: registryWith(1), shardCount: SHARDS });
        await runtime.start();
        opened.push({ runtime, cleanup });
        await runtime.send(t("a"), { type: "create", input: { lane: "red", priority: 3 } });
        // The next write lands, then its answer is lost: a cut connection, a failed-over master.
        const commitMany = store.commitMany.bind(store);
        let loseNext = true;
        store.commitMany = async (batches) => {
          const results = await commitMany(batches);
          if (!loseNext) return results;
          loseNext = false;
          throw new Error("connection lost after the write");
        };
        // With its id, the retried event is known to the store: it comes back a duplicate, not a refusal.
        const taken = await runtime.send(t("a"), { type: "take" }, { eventId: "take-a" });
        expect(taken.outcome).toBe("duplicate");
        const view = await runtime.inspect(t("a"));
        expect(view!.state).toBe("taken");
        expect(view!.history.filter((h) => h.event.type === "take")).toHaveLength(1);
        // The node's mirror is the store's, not the state before the lost answer.
        expect(runtime.local.range("lane:red", 0, 10)).toEqual([]);
        expect(runtime.local.counters("tickets:")).toEqual(await runtime.readCounters("tickets:"));
        await runtime.send(t("a"), { type: "close" });
        expect((await runtime.inspect(t("a")))!.state).toBe("closed");
      });

      it("rebuilds a shard's indexes from its actors when it takes a shard written under older rules", async () => {
        const { store, cleanup } = await makeStore();
        const before = new Runtime({ store, registry: registryWith(null), shardCount: SHARDS });
        await before.start();
        for (const id of ["x", "y", "z"]) {
          await before.send(t(id), { type: "create", input: { lane: "green", priority: id.charCodeAt(0) } });
        }
        await before.send(t("y"), { type: "take" });
        await before.stop();
        const runtime = new Runtime({ store, registry: registryWith(1), shardCount: SHARDS });
        await runtime.start();
        opened.push({ runtime, cleanup });
        expect(await lane(runtime, "green")).toEqual(["x:120", "z:122"]);
        expect(runtime.local.counters("tickets:")).toEqual(
          new Map([
            ["tickets:open", 2],
            ["tickets:taken", 1],
          ]),
        );
        const shard = shardOf(actorKeyOf(t("x")), SHARDS);
        expect(await store.readIndexVersion(shard)).toBe(1);
        // Commits go on from the rebuilt indexes.
        await runtime.send(t("x"), { type: "take" });
        expect(await lane(runtime, "green")).toEqual(["z:122"]);
      });
    });

    describe("inline effects", () => {
      /** An order that asks for a price: answered inline, the price lands in the order's own record. */
      const order = setup({
        types: {
          context: {} as { price: number | null },
          events: {} as { type: "create" } | { type: "priced"; price: number } | { type: "ask" },
        },
        actions: { ...effectActions },
      }).createMachine({
        id: "order",
        initial: "asking",
        context: { price: null },
        states: {
          asking: {
            entry: { type: "emitEffect", params: { effect: "price.request", data: { item: "x" } } },
            on: { priced: { target: "priced", actions: assign({ price: ({ event }) => event.price }) } },
          },
          priced: { on: { ask: "asking" } },
        },
      });
      const o = (id: string) => ({ kind: "order", id });

      async function bootOrders() {
        const { store, cleanup } = await makeStore();
        const registry = new KindRegistry().register({ kind: "order", machine: order, version: 1 });
        const runtime = new Runtime({ store, registry, shardCount: SHARDS, sweepEveryMs: 50 });
        opened.push({ runtime, cleanup });
        return runtime;
      }

      it("answers an effect before the commit: the answer joins the record, the effect never reaches the outbox", async () => {
        const runtime = await bootOrders();
        const later: unknown[] = [];
        const settled: [boolean, unknown][] = [];
        runtime.onEffect("price.request", (data) => void later.push(data), {
          inline: () => ({
            handled: true,
            events: [{ type: "priced", price: 42 }],
            settled: (committed, state) => settled.push([committed, state?.value]),
          }),
        });
        await runtime.start();
        const commits: number[] = [];
        runtime.onCommit((_shard, records) => commits.push(records));
        const created = await runtime.send(o("1"), { type: "create" });
        // One record, one commit: the create (the send's own step) and its answer, the version moved by both.
        expect(created).toMatchObject({ outcome: "committed", version: 1 });
        expect(commits).toEqual([1]);
        const view = await runtime.inspect(o("1"));
        expect(view).toMatchObject({ state: "priced", version: 2, context: { price: 42 } });
        expect(view!.history.map((h) => h.event.type)).toEqual(["create", "priced"]);
        expect(settled).toEqual([[true, "priced"]]);
        expect(later).toEqual([]);
        const shard = shardOf(actorKeyOf(o("1")), SHARDS);
        expect(await runtime.store.readOutbox(shard, 10)).toEqual([]);
      });

      it("leaves an effect its inline handler declines to the durable path", async () => {
        const runtime = await bootOrders();
        const later = new Promise<unknown>((resolve) => {
          runtime.onEffect("price.request", (data) => resolve(data), { inline: () => ({ handled: false }) });
        });
        await runtime.start();
        expect(await runtime.send(o("2"), { type: "create" })).toMatchObject({ version: 1 });
        expect(await later).toEqual({ item: "x" });
        expect((await runtime.inspect(o("2")))?.state).toBe("asking");
      });

      it("tells an inline answer's handler its record did not commit, and asks again when the cause is retried", async () => {
        const runtime = await bootOrders();
        const settled: boolean[] = [];
        let asked = 0;
        runtime.onEffect("price.request", () => {}, {
          inline: () => {
            asked++;
            return {
              handled: true,
              events: [{ type: "priced", price: asked }],
              settled: (c) => settled.push(c),
            };
          },
        });
        await runtime.start();
        await runtime.send(o("3"), { type: "create" });
        // Another writer moves the stored version on, so the next commit of this actor conflicts once.
        const shard = shardOf(actorKeyOf(o("3")), SHARDS);
        const lease = await runtime.store.readLease(shard);
        const [stored] = await runtime.store.loadActors(shard, ["order/3"]);
        await runtime.store.importActor(
          shard,
          { owner: lease!.owner, epoch: lease!.epoch },
          "order/3",
          7,
          stored!.snapshot,
        );
        const sent = await runtime.send(o("3"), { type: "ask" });
        expect(sent).toMatchObject({ outcome: "committed", version: 8 });
        expect(settled).toEqual([true, false, true]);
        expect(asked).toBe(3);
        expect(await runtime.inspect(o("3"))).toMatchObject({
          state: "priced",
          version: 9,
          context: { price: 3 },
        });
      });
    });
  });
}
