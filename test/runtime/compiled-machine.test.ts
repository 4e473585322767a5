import { describe, expect, it } from "vitest";
import { type AnyStateMachine, assign, cancel, createMachine, enqueueActions, raise, setup } from "xstate";
import { registerWorkloadKinds } from "../../src/actors/index.js";
import { dispatchNames } from "../../src/actors/job/outbound.js";
import type { MachineState } from "../../src/runtime/compiled-machine.js";
import { whyNotCompiled } from "../../src/runtime/compiled-machine.js";
import { effectActions } from "../../src/runtime/effects.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import { verifyingRunner } from "../../src/runtime/machine-runner.js";
import { inFile, jobResources, taskInput } from "../actors/fixtures.js";

/**
 * The compiled machines against xstate: every step of every walk below runs
 * on both (`verifyingRunner`) and any difference in state value, context
 * (byte for byte, key order included), status, acceptance or actions fails.
 * The whole suite runs the same comparison on every real step
 * (PANDA_VERIFY_MACHINES in vitest.config.ts); this file adds the corners.
 */

type Event = { type: string; [key: string]: unknown };

/** Freezes a context and everything in it: a step must leave the state it started from as it was. */
function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return;
  for (const member of Object.values(value)) deepFreeze(member);
  Object.freeze(value);
}

/**
 * Walks `events` from the initial state of `input`, comparing every step;
 * returns the mismatches and the visited values. Each state's context is
 * frozen before the next step, so a step that changed the context it started
 * from (rather than the copy its first assign made) throws.
 */
function walk(machine: AnyStateMachine, input: unknown, events: Event[]) {
  const mismatches: string[] = [];
  const runner = verifyingRunner(machine, (report) => mismatches.push(report));
  let state: MachineState = runner.initial(input).state;
  const visited = [runner.valueString(state)];
  for (const event of events) {
    if (state.status !== "active") break;
    deepFreeze(state.context);
    try {
      state = runner.transition(state, event).state;
    } catch {
      // Both threw (else a mismatch was reported): the runtime refuses the event; the walk goes on.
    }
    visited.push(runner.valueString(state));
  }
  return { mismatches, visited, state };
}

/** The event types the state's nodes have transitions for (xstate's node tree, read for the walk). */
function handledEvents(machine: AnyStateMachine, state: MachineState): Set<string> {
  const snapshot = machine.resolveState({
    value: state.value as never,
    context: state.context,
  }) as unknown as {
    _nodes: { transitions: Map<string, unknown> }[];
  };
  return new Set(snapshot._nodes.flatMap((node) => [...node.transitions.keys()]));
}

/** A small deterministic generator, so a failing walk can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const registry = registerWorkloadKinds(new KindRegistry());

describe("compiled machines", () => {
  it("compiles every workload kind: none falls back to xstate", () => {
    for (const kind of registry.list()) {
      expect(whyNotCompiled(registry.get(kind).machine), kind).toBeNull();
    }
  });

  it("refuses to compile what it does not implement, so xstate runs it", () => {
    const parallel = setup({}).createMachine({
      type: "parallel",
      states: { a: { initial: "x", states: { x: {} } }, b: { initial: "y", states: { y: {} } } },
    });
    expect(whyNotCompiled(parallel)).toMatch(/parallel/);
    const history = setup({}).createMachine({
      initial: "a",
      states: { a: { initial: "x", states: { x: {}, h: { type: "history" } } } },
    });
    expect(whyNotCompiled(history)).toMatch(/history/);
    // A guard named with no implementation: xstate throws only when it is evaluated, so xstate runs it.
    const unguarded = createMachine({
      initial: "a",
      states: { a: { on: { go: { guard: "missing", target: "b" } } }, b: {} },
    });
    expect(whyNotCompiled(unguarded)).toMatch(/no implementation/);
  });

  it("walks the job machine at random the same way xstate does", () => {
    const machine = registry.get("job").machine;
    const input = {
      taskId: "t-1",
      index: 0,
      attempt: 1,
      user: "alice",
      group: null,
      type: "production",
      priority: 100,
      resources: jobResources,
      inputs: [inFile("a"), inFile("b")],
      outputs: { dataset: "mc.out", destination: "SITE-B" },
      payload: { command: ["true"], env: {}, outputs: [] },
      retry: { maxAttempts: 3 },
      atMs: 1_000,
    };
    const DISPATCH = dispatchNames("t-1-0.1", "SITE-B").subscription;
    let steps = 0;
    const reached = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
      let atMs = 1_000;
      /** Every kind of event the job hears, with random fields: right and wrong pilots, attempts, ids. */
      const anyEvent = (): Event => {
        atMs += Math.floor(next() * 1000);
        const site = pick(["SITE-A", "SITE-A", "SITE-B", null]);
        const pilotId = pick(["p-1", "p-1", "p-1", "p-2"]);
        const attempt = pick([1, 1, 1, 2]);
        const templates: Event[] = [
          {
            type: "brokered",
            site,
            filesToMove:
              site === "SITE-B" ? [{ lfn: "a", sizeBytes: 100, checksum: "ad:a", sourceSite: "SITE-A" }] : [],
            waitingFor: pick([[], [], ["b"]]),
            atMs,
          },
          { type: "inputs.ready", subscription: pick([DISPATCH, "other"]), atMs },
          { type: "inputs.failed", subscription: DISPATCH, reason: "gone", atMs },
          { type: "input.available", dataset: "mc.in", lfns: pick([["b"], ["a", "b"], ["z"]]), atMs },
          { type: "input.missing", dataset: "mc.in", lfns: ["b"], atMs },
          { type: "dispatch", pilotId, thread: pick(["primary", "secondary"]), atMs },
          { type: "pilot.starting", pilotId, attempt, atMs },
          { type: "pilot.running", pilotId, attempt, atMs },
          { type: "pilot.heartbeat", pilotId, attempt, atMs },
          {
            type: "pilot.ended",
            pilotId,
            attempt,
            exitCode: pick([0, 0, 1]),
            ...(next() < 0.3 ? { errorClass: pick(["pilot", "stagein", "payload"]) } : {}),
            outputs: pick([[], [{ lfn: "out.1", sizeBytes: 10, checksum: "ad:1" }]]),
            log: null,
            atMs,
          },
          { type: "outputs.registered", requestId: pick(["t-1-0.1", "x"]), atMs },
          { type: "outputs.transferred", subscription: "out.t-1-0.1@SITE-B", atMs },
          { type: "outputs.failed", subscription: "out.t-1-0.1@SITE-B", reason: "lost", atMs },
          { type: "throttle", reason: "quota", atMs },
          { type: "release", atMs },
          { type: "xstate.after.rebroker.job.defined.backingOff" },
          { type: "nonsense", atMs },
        ];
        // Endings are rare, so that walks get deep into the lifecycle first.
        if (next() < 0.1) {
          templates.push(
            { type: "kill", by: "alice", reason: "enough", atMs },
            { type: "close", reason: "task done", atMs },
            {
              type: pick(["xstate.after.sentTimeout.job.sent", "xstate.after.heartbeatTimeout.job.running"]),
            },
          );
        }
        return pick(templates);
      };
      // Mostly an event the current state has a transition for, sometimes anything: deep walks, and refusals.
      const mismatches: string[] = [];
      const runner = verifyingRunner(machine, (report) => mismatches.push(report));
      let state: MachineState = runner.initial(input).state;
      reached.add(runner.valueString(state));
      for (let i = 0; i < 60 && state.status === "active"; i++) {
        const handled = handledEvents(machine, state);
        let event = anyEvent();
        for (let tries = 0; tries < 20 && next() < 0.85 && !handled.has(event.type); tries++)
          event = anyEvent();
        deepFreeze(state.context);
        try {
          state = runner.transition(state, event).state;
        } catch {
          // Both threw (else a mismatch was reported): the runtime refuses such an event.
        }
        steps++;
        reached.add(runner.valueString(state));
      }
      expect(mismatches).toEqual([]);
    }
    // The walks reach far: hundreds of compared steps, through every stage of the lifecycle.
    expect(steps).toBeGreaterThan(400);
    expect([...reached].sort()).toEqual(
      expect.arrayContaining([
        "activated",
        "assigned",
        "failed",
        "finished",
        "holding",
        "running",
        "sent",
        "transferring",
      ]),
    );
  });

  it("walks the task machine through job reports, kills and retries the same way xstate does", () => {
    const machine = registry.get("task").machine;
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
      const events = Array.from({ length: 30 }, (): Event => {
        const index = pick([0, 1, 2]);
        const attempt = pick([1, 1, 2]);
        const jobId = `t-1.${index}.${attempt}`;
        return pick<Event>([
          { type: "job.started", jobId, index, attempt, site: "SITE-A", atMs: 2_000 },
          {
            type: "job.ended",
            jobId,
            index,
            attempt,
            outcome: pick(["finished", "finished", "failed", "cancelled"]),
            errorClass: pick([null, "payload"]),
            site: "SITE-A",
            atMs: 3_000,
          },
          {
            type: "job.retried",
            jobId,
            index,
            attempt,
            nextJobId: `t-1.${index}.${attempt + 1}`,
            errorClass: "pilot",
            site: "SITE-A",
            atMs: 2_500,
          },
          { type: "kill", by: "alice", reason: "stop", atMs: 4_000 },
        ]);
      });
      expect(walk(machine, taskInput, events).mismatches).toEqual([]);
    }
  });

  describe("corners of xstate's semantics", () => {
    type ZooContext = { n: number; log: string[] };
    type ZooEvent = { type: string; by?: number };
    type Args = { context: ZooContext; event: ZooEvent };
    // Loosely typed on purpose: a machine built to exercise corners, not to be type-safe.
    const zooImplementations = {
      actions: {
        ...effectActions,
        bump: assign(({ context }: Args, params: { by: number }) => ({ n: context.n + params.by })),
        note: assign(({ context, event }: Args) => ({ log: [...context.log, event.type] })),
        fan: enqueueActions((args) => {
          const { context, enqueue, check } = args as unknown as Args & { enqueue: unknown; check: unknown };
          const add = enqueue as ((action: unknown) => void) & {
            assign(update: unknown): void;
            raise(event: unknown, options: unknown): void;
            cancel(id: string): void;
          };
          add.assign({ n: context.n * 2 });
          if ((check as (guard: string) => boolean)("positive"))
            add({ type: "emitEffect", params: { effect: "fanned", data: context.n } });
          add.raise({ type: "later" }, { delay: 50, id: "later" });
          add.cancel("later");
        }),
      },
      guards: {
        positive: ({ context }: Args) => context.n > 0,
        byAtLeast: ({ event }: Args, params: { min: number }) => (event.by ?? 0) >= params.min,
        big: ({ context }: Args) => context.n > 100,
      },
      delays: { soon: ({ context }: Args) => 10 + context.n },
    };
    const zoo: AnyStateMachine = createMachine(
      {
        id: "zoo",
        context: { n: 1, log: [] },
        initial: "idle",
        entry: "note",
        states: {
          idle: {
            entry: [{ type: "bump", params: { by: 1 } }, raise({ type: "tick" }, { delay: 5, id: "tick" })],
            exit: [cancel("tick"), "note"],
            on: {
              go: {
                target: "busy",
                actions: { type: "bump", params: ({ context }: Args) => ({ by: context.n }) },
              },
              "pilot.*": { actions: "note" },
              "*": { guard: { type: "byAtLeast", params: { min: 5 } }, actions: "note" },
              fan: { actions: "fan" },
              self: { target: "idle", reenter: true },
              stay: { target: "idle" },
              nothing: {},
            },
          },
          busy: {
            initial: "a",
            entry: "note",
            exit: "note",
            after: { soon: "idle", 1000: { target: "done" } },
            on: { up: "#zoo.idle", inner: ".b", deep: { target: "busy.b", reenter: true } },
            states: {
              a: {
                on: { next: "b", grow: { actions: { type: "bump", params: { by: 200 } } } },
                always: { guard: "big", target: "b" },
              },
              b: { on: { finish: "c", back: "a" } },
              c: { type: "final" },
            },
            onDone: { target: "done", actions: "note" },
          },
          done: { type: "final", entry: { type: "emitEffect", params: { effect: "done", data: null } } },
        },
      } as never,
      zooImplementations as never,
    );

    const sequences: Record<string, Event[]> = {
      "a wildcard and a partial descriptor, guard params": [
        { type: "pilot.running" },
        { type: "whatever", by: 9 },
        { type: "whatever", by: 1 },
      ],
      "enqueued assign, check, raise and cancel": [{ type: "fan" }, { type: "fan" }],
      "re-entering, staying and doing nothing": [
        { type: "self" },
        { type: "stay" },
        { type: "nothing" },
        { type: "unknown" },
      ],
      "into a compound state, its delayed transitions, out by id": [
        { type: "go" },
        { type: "inner" },
        { type: "back" },
        { type: "deep" },
        { type: "up" },
      ],
      "an eventless transition after an assign": [{ type: "go" }, { type: "grow" }, { type: "finish" }],
      "a nested final state and onDone": [
        { type: "go" },
        { type: "next" },
        { type: "finish" },
        { type: "go" },
      ],
      "timers firing": [
        { type: "go" },
        { type: "xstate.after.soon.zoo.busy" },
        { type: "go" },
        { type: "xstate.after.1000.zoo.busy" },
      ],
    };
    for (const [name, events] of Object.entries(sequences)) {
      it(name, () => {
        const { mismatches, visited } = walk(zoo, undefined, events);
        expect(mismatches).toEqual([]);
        expect(visited.length).toBeGreaterThan(1);
      });
    }

    it("restores every state value as xstate does, a compound one given without its child included", () => {
      const mismatches: string[] = [];
      const runner = verifyingRunner(zoo, (report) => mismatches.push(report));
      for (const value of ["idle", "busy", { busy: "b" }, { busy: "c" }, "done"]) {
        runner.restore({ value, context: { n: 3, log: [] }, status: "active" });
      }
      expect(mismatches).toEqual([]);
      expect(() => runner.restore({ value: "nowhere", context: {}, status: "active" })).toThrow();
    });
  });
});
