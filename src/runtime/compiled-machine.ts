/**
 * A hosted machine compiled for speed. xstate stays the definition and the
 * reference semantics: this executes xstate's own normalized state nodes
 * (transitions, guards, entry and exit actions with their delayed raises and
 * cancels, eventless transitions, final states) with the SCXML algorithm
 * xstate v5 implements, for the subset the runtime hosts: no parallel or
 * history states, no invoked or spawned actors, no guards built from
 * and/or/not/stateIn. A machine outside the subset is not compiled and runs
 * on xstate itself (`compileMachine` returns null).
 *
 * Why: xstate builds a full snapshot (state value from an adjacency list,
 * tags, node set) for every microstep and every assign; a job's six
 * transitions cost ~115 us there. Here the configuration of a non-parallel
 * machine is its atomic leaf, the exit and entry sets of a transition from a
 * leaf are computed once, and a state is a small plain object.
 *
 * Every difference from xstate is a bug: `verifyingRunner` (see
 * `machine-runner.ts`) runs both on every step when PANDA_VERIFY_MACHINES
 * is set, as the test suite does.
 *
 * The graph it walks is built in `machine-graph.ts`, the exit and entry sets
 * in `transition-plans.ts`. What stays here is over 400 lines on purpose: the
 * microstep loop, the running of actions and the evaluation of guards share
 * one step's collection and draft context (fields of this class), and split
 * apart they would pass that state through every call on the hottest path.
 */

import { type AnyStateMachine, cancel, type EventObject, raise } from "xstate";
import { ContextCopier } from "./context-copier.js";
import {
  type Action,
  type AnyFn,
  BUILTIN_ASSIGN,
  BUILTIN_CANCEL,
  BUILTIN_ENQUEUE,
  BUILTIN_RAISE,
  candidatesOf,
  type Guard,
  MachineGraph,
  type Node,
  NotCompilable,
  type Plan,
  type Transition,
} from "./machine-graph.js";
import { initialPlan, planOf } from "./transition-plans.js";

export { NotCompilable } from "./machine-graph.js";

export type StateValue = string | { [key: string]: StateValue };

/** An actor's state as the runtime holds it: what a snapshot persists, plus the leaf for the executor. */
export interface MachineState {
  readonly value: StateValue;
  // biome-ignore lint/suspicious/noExplicitAny: contexts are typed by their kinds, not by the runtime
  readonly context: any;
  readonly status: "active" | "done" | "error" | "stopped";
  readonly output?: unknown;
  readonly error?: unknown;
}

/** An action the machine asks the runtime to perform: a delayed raise, a cancel, or an effect action. */
export interface ResolvedAction {
  type: string;
  params: unknown;
}

export interface CompiledStep {
  state: MachineState;
  actions: ResolvedAction[];
  /**
   * Whether the event was taken: a transition was enabled for it that has a
   * target or actions (xstate's `can`), or the state changed anyway (an
   * eventless transition). A refused event leaves the very same state object.
   */
  accepted: boolean;
}

/** The state object of a compiled machine: its leaf rides along, out of sight of serializers. */
class CompiledState implements MachineState {
  readonly #leaf: Node;
  constructor(
    leaf: Node,
    // biome-ignore lint/suspicious/noExplicitAny: see MachineState
    readonly context: any,
    readonly status: "active" | "done" | "error",
    readonly output?: unknown,
    readonly error?: unknown,
  ) {
    this.#leaf = leaf;
  }
  get value(): StateValue {
    return this.#leaf.value;
  }
  static leafOf(state: CompiledState): Node {
    return state.#leaf;
  }
}

/** An `enqueue.assign(...)` of an enqueueActions collect, applied by `run` as xstate applies an assign. */
class EnqueuedAssign {
  constructor(readonly assignment: unknown) {}
}

const compiledByMachine = new WeakMap<AnyStateMachine, CompiledMachine | null>();

/** The compiled form of `machine`, or null when it uses something outside the subset (then xstate runs it). */
export function compileMachine(machine: AnyStateMachine): CompiledMachine | null {
  let compiled = compiledByMachine.get(machine);
  if (compiled === undefined) {
    try {
      compiled = new CompiledMachine(machine);
    } catch (err) {
      if (!(err instanceof NotCompilable)) throw err;
      compiled = null;
    }
    compiledByMachine.set(machine, compiled);
  }
  return compiled;
}

/** The reason `machine` is not compiled, or null when it is: for tests that pin every kind to the fast path. */
export function whyNotCompiled(machine: AnyStateMachine): string | null {
  try {
    new CompiledMachine(machine);
    return null;
  } catch (err) {
    if (err instanceof NotCompilable) return err.message;
    throw err;
  }
}

export class CompiledMachine {
  private readonly graph: MachineGraph;
  /** What entering the machine enters: the same for every actor of the kind, like every other plan. */
  private readonly initialPlan: Plan;
  private readonly contextConfig: unknown;
  /** The arguments xstate passes besides context and event; hosted machines do not use them. */
  private readonly scope: { self: unknown; system: unknown };
  /**
   * One `enqueue` and `check` per machine, aimed at the collection in progress:
   * a collect is synchronous, and its actions are resolved after it returns.
   */
  private collecting: { actions: Action[]; context: unknown; event: EventObject } | null = null;
  /**
   * The context the current microstep's first assign made: its later assigns
   * change it in place. Nothing outside the microstep holds it yet, so this
   * is what xstate's new object per assign would give, without copying a
   * job's thirty fields three or four times a transition. Cleared when the
   * microstep ends: a context that left one is never changed again.
   */
  private draft: object | null = null;
  /** Copies this machine's contexts (a copier of its own: see ContextCopier). */
  private readonly contexts = new ContextCopier();
  private readonly enqueue = Object.assign(
    (action: Action) => {
      this.collecting!.actions.push(action);
    },
    {
      // A light stand-in for the assign action xstate's enqueue makes (a function object with four
      // members, one per call); `run` applies it the same way.
      assign: (assignment: unknown) => {
        this.collecting!.actions.push(new EnqueuedAssign(assignment) as unknown as Action);
      },
      // The same action objects xstate's enqueue makes, resolved like any other.
      cancel: (sendId: unknown) => {
        this.collecting!.actions.push(cancel(sendId as never));
      },
      raise: (raised: unknown, options?: unknown) => {
        this.collecting!.actions.push(raise(raised as never, options as never));
      },
    },
  );
  private readonly check = (guard: Guard): boolean =>
    this.guard(guard, this.collecting!.context, this.collecting!.event);

  constructor(
    machine: AnyStateMachine,
    scope: { self: unknown; system: unknown } = { self: undefined, system: undefined },
  ) {
    this.scope = scope;
    this.contextConfig = (machine.config as { context?: unknown }).context;
    if ((machine.config as { output?: unknown }).output !== undefined) {
      throw new NotCompilable("the machine declares an output");
    }
    this.graph = new MachineGraph(machine);
    this.initialPlan = initialPlan(this.graph.root);
  }

  /** The machine's first state for `input`, and the actions entering it asks for. */
  initial(input: unknown): CompiledStep {
    const initEvent = { type: "xstate.init", input };
    const actions: ResolvedAction[] = [];
    let context: unknown;
    try {
      const config = this.contextConfig;
      if (typeof config === "function") {
        const produced = config({ spawn: noSpawn, input, self: this.scope.self });
        context = Object.assign({}, {}, produced);
      } else {
        context = config ?? {};
      }
      const internal: EventObject[] = [];
      // The initial microstep: from the root, entering the initial states (xstate's initialMicrostep).
      const plan = this.initialPlan;
      // The initial microstep: a context made for this actor above may be changed in place by its assigns.
      this.draft = typeof config === "function" ? (context as object) : null;
      let state: CompiledState;
      try {
        state = this.enter(plan, context, initEvent, actions, internal, true);
      } finally {
        this.draft = null;
      }
      state = this.settle(state, initEvent, actions, internal);
      return { state, actions, accepted: true };
    } catch (error) {
      const pre = new CompiledState(this.graph.root, context ?? {}, "error", undefined, error);
      return { state: pre, actions, accepted: false };
    }
  }

  /** Applies one event (xstate's macrostep); throws where xstate throws (a guard or action that throws). */
  transition(state: MachineState, event: EventObject): CompiledStep {
    const current = this.asCompiled(state);
    const actions: ResolvedAction[] = [];
    const internal: EventObject[] = [];
    const leaf = CompiledState.leafOf(current);
    const selected = this.select(leaf, event, current.context);
    const can = selected !== null && (selected.targets !== null || selected.actions.length > 0);
    let next: CompiledState = selected
      ? this.microstep(selected, current, event, actions, internal)
      : current;
    next = this.settle(next, event, actions, internal);
    return { state: next, actions, accepted: can || next !== current || actions.length > 0 };
  }

  /**
   * A persisted state back as a live one: the value names a configuration of
   * this machine (a compound node given without its child enters its initial
   * child, as xstate's resolveState does); done when the leaf is a top-level
   * final state.
   */
  restore(persisted: { value: unknown; context: unknown; status: string; output?: unknown }): MachineState {
    const leaf = this.graph.leafOfValue(persisted.value);
    const final = leaf.type === "final" && leaf.parent === this.graph.root;
    const status = final ? "done" : ((persisted.status || "active") as MachineState["status"]);
    if (status !== "active" && status !== "done" && status !== "error") {
      return { value: leaf.value, context: persisted.context ?? {}, status, output: persisted.output };
    }
    return new CompiledState(leaf, persisted.context ?? {}, status, persisted.output);
  }

  /** `defined.brokering` for `{defined: "brokering"}`, without walking the value. */
  valueString(state: MachineState): string {
    return CompiledState.leafOf(this.asCompiled(state)).valueString;
  }

  // ---------------------------------------------------------------- running

  private asCompiled(state: MachineState): CompiledState {
    if (state instanceof CompiledState) return state;
    // A state from elsewhere (an xstate snapshot): find its leaf.
    return this.restore(state) as CompiledState;
  }

  /** The enabled transition for `event` from `leaf` (xstate's transitionNode over a single branch). */
  private select(leaf: Node, event: EventObject, context: unknown): Transition | null {
    for (let node: Node | null = leaf; node; node = node.parent) {
      for (const candidate of candidatesOf(node, event.type)) {
        if (candidate.guard === undefined) return candidate;
        let passed: boolean;
        try {
          passed = this.guard(candidate.guard, context, event);
        } catch (err) {
          const guard = candidate.guard;
          const type =
            typeof guard === "string"
              ? guard
              : typeof guard === "object"
                ? (guard as { type?: string }).type
                : undefined;
          throw new Error(
            `Unable to evaluate guard ${type ? `'${type}' ` : ""}in transition for event '${event.type}' in state node '${node.x.id}':\n${(err as Error).message}`,
          );
        }
        if (passed) return candidate;
      }
    }
    return null;
  }

  /**
   * xstate's evaluateGuard for the guards the subset allows: a function, by
   * name or inline, with params. A transition's named guard was found at
   * compile time (`checkGuard`); one named in an `enqueueActions` check is
   * looked up only here, and a missing one is the machine's error, as in xstate.
   */
  private guard(guard: Guard, context: unknown, event: EventObject): boolean {
    const isInline = typeof guard === "function";
    const name = isInline ? undefined : typeof guard === "string" ? guard : (guard as { type: string }).type;
    const resolved = isInline ? guard : this.graph.guardImpls[name!];
    if (!resolved) throw new Error(`the machine's setup has no guard named '${name}'`);
    return (resolved as AnyFn)({ context, event }, paramsOf(guard, context, event)) as boolean;
  }

  /** Eventless transitions and internally raised events until the state rests (the rest of xstate's macrostep). */
  private settle(
    start: CompiledState,
    event: EventObject,
    actions: ResolvedAction[],
    internal: EventObject[],
  ): CompiledState {
    let state = start;
    let nextEvent = event;
    let selectEventless = true;
    while (state.status === "active") {
      let enabled: Transition | null = selectEventless ? this.eventless(state, nextEvent) : null;
      const previous: CompiledState | undefined = enabled ? state : undefined;
      if (!enabled) {
        if (internal.length === 0) break;
        nextEvent = internal.shift()!;
        enabled = this.select(CompiledState.leafOf(state), nextEvent, state.context);
      }
      state = enabled ? this.microstep(enabled, state, nextEvent, actions, internal) : state;
      selectEventless = state !== previous;
    }
    return state;
  }

  private eventless(state: CompiledState, event: EventObject): Transition | null {
    for (let node: Node | null = CompiledState.leafOf(state); node; node = node.parent) {
      if (!node.always) continue;
      for (const t of node.always) {
        if (t.guard === undefined || this.guard(t.guard, state.context, event)) return t;
      }
    }
    return null;
  }

  /** One transition: exit, its actions, enter (xstate's microstep for one enabled transition). */
  private microstep(
    t: Transition,
    current: CompiledState,
    event: EventObject,
    actions: ResolvedAction[],
    internal: EventObject[],
  ): CompiledState {
    const leaf = CompiledState.leafOf(current);
    let context: unknown = current.context;
    this.draft = null;
    try {
      if (!t.targets) {
        context = this.run(t.actions, context, event, actions, internal);
        return context === current.context ? current : new CompiledState(leaf, context, current.status);
      }
      const plan = planOf(t, leaf);
      for (const node of plan.exit) context = this.run(node.exit, context, event, actions, internal);
      context = this.run(t.actions, context, event, actions, internal);
      const entered = this.enter(plan, context, event, actions, internal, false);
      if (entered.status === "active" && !plan.moved && entered.context === current.context) return current;
      return entered;
    } finally {
      this.draft = null;
    }
  }

  /** Enters the plan's states in document order; a top-level final state ends the machine. */
  private enter(
    plan: Plan,
    context: unknown,
    event: EventObject,
    actions: ResolvedAction[],
    internal: EventObject[],
    initial: boolean,
  ): CompiledState {
    let done = false;
    for (const node of plan.entry) {
      context = this.run(node.entry, context, event, actions, internal);
      if (plan.defaultEntry.has(node) || (initial && node === this.graph.root)) {
        context = this.run(node.initialActions, context, event, actions, internal);
      }
      if (node.type === "final") {
        const parent = node.parent;
        if (parent && parent !== this.graph.root) {
          // A final child of a compound state: xstate raises its done event within the step.
          internal.push({ type: `xstate.done.state.${parent.x.id}`, output: undefined } as EventObject);
          continue;
        }
        done = true;
      }
    }
    if (!done) return new CompiledState(plan.leaf, context, "active");
    // The machine is done: every remaining node is exited (xstate runs their exit actions).
    for (let node: Node | null = plan.leaf; node; node = node.parent) {
      context = this.run(node.exit, context, event, actions, internal);
    }
    return new CompiledState(plan.leaf, context, "done", undefined);
  }

  /**
   * An assign: its partial over the context, on the microstep's own copy
   * (see `draft`), made by the microstep's first assign.
   */
  private applyAssign(assignment: unknown, context: unknown, event: EventObject, params: unknown): unknown {
    const partial = assignPartial(assignment, context, event, params, this.scope);
    if (context === this.draft) return Object.assign(context as object, partial);
    // The same own properties in the same order as xstate's Object.assign({}, ...), faster.
    this.draft = this.contexts.copy(context as object, partial as object);
    return this.draft;
  }

  /** Resolves actions in order; assigns produce a new context each, as in xstate. */
  private run(
    list: readonly Action[],
    context: unknown,
    event: EventObject,
    out: ResolvedAction[],
    internal: EventObject[],
  ): unknown {
    for (const action of list) {
      if (action instanceof EnqueuedAssign) {
        context = this.applyAssign(action.assignment, context, event, undefined);
        continue;
      }
      const isInline = typeof action === "function";
      const type = isInline
        ? undefined
        : typeof action === "string"
          ? action
          : (action as { type: string }).type;
      const resolved = (isInline ? action : this.graph.actionImpls[type!]) as AnyFn | undefined;
      const params = paramsOf(action, context, event);
      if (!resolved || !("resolve" in resolved)) {
        out.push({
          type:
            typeof action === "string"
              ? action
              : typeof action === "object"
                ? type!
                : (action as AnyFn).name || "(anonymous)",
          params,
        });
        continue;
      }
      const builtin = (resolved as unknown as { type: string }).type;
      switch (builtin) {
        case BUILTIN_ASSIGN:
          context = this.applyAssign(
            (resolved as unknown as { assignment: unknown }).assignment,
            context,
            event,
            params,
          );
          break;
        case BUILTIN_ENQUEUE: {
          const enqueued = this.collect(
            (resolved as unknown as { collect: AnyFn }).collect,
            context,
            event,
            params,
          );
          context = this.run(enqueued, context, event, out, internal);
          break;
        }
        case BUILTIN_RAISE: {
          const args = { context, event, self: this.scope.self, system: this.scope.system };
          const raise = resolved as unknown as { event: unknown; id?: string; delay?: unknown };
          if (typeof raise.event === "string") {
            throw new Error(
              `Only event objects may be used with raise; use raise({ type: "${raise.event}" }) instead`,
            );
          }
          const raised = (
            typeof raise.event === "function" ? (raise.event as AnyFn)(args, params) : raise.event
          ) as EventObject;
          let delay: unknown;
          if (typeof raise.delay === "string") {
            const configured = this.graph.delayImpls[raise.delay];
            delay = typeof configured === "function" ? (configured as AnyFn)(args, params) : configured;
          } else {
            delay = typeof raise.delay === "function" ? (raise.delay as AnyFn)(args, params) : raise.delay;
          }
          if (typeof delay !== "number") internal.push(raised);
          out.push({ type: BUILTIN_RAISE, params: { event: raised, id: raise.id, delay } });
          break;
        }
        case BUILTIN_CANCEL: {
          const args = { context, event, self: this.scope.self, system: this.scope.system };
          const sendId = (resolved as unknown as { sendId: unknown }).sendId;
          out.push({
            type: BUILTIN_CANCEL,
            params: { sendId: typeof sendId === "function" ? (sendId as AnyFn)(args, params) : sendId },
          });
          break;
        }
        default:
          throw new Error(`built-in action ${builtin} is not supported in a hosted machine`);
      }
    }
    return context;
  }

  /** Runs an enqueueActions' collect and returns what it enqueued (xstate's resolveEnqueueActions). */
  private collect(collect: AnyFn, context: unknown, event: EventObject, params: unknown): Action[] {
    const outer = this.collecting;
    const collecting = { actions: [] as Action[], context, event };
    this.collecting = collecting;
    try {
      collect(
        {
          context,
          event,
          enqueue: this.enqueue,
          check: this.check,
          self: this.scope.self,
          system: this.scope.system,
        },
        params,
      );
    } finally {
      this.collecting = outer;
    }
    return collecting.actions;
  }
}

/** The params of a guard or action reference: none for a name or an inline function, else given or computed. */
function paramsOf(ref: unknown, context: unknown, event: EventObject): unknown {
  if (typeof ref !== "object" || ref === null || !("params" in ref)) return undefined;
  const params = (ref as { params: unknown }).params;
  return typeof params === "function" ? (params as AnyFn)({ context, event }) : params;
}

function noSpawn(): never {
  throw new Error("hosted machines may not spawn actors");
}

/** What `assign(...)` resolves to in xstate: a shallow copy of the context with the update merged in. */
function assignPartial(
  assignment: unknown,
  context: unknown,
  event: EventObject,
  params: unknown,
  scope: { self: unknown; system: unknown },
): Record<string, unknown> {
  if (!context) {
    throw new Error(
      "Cannot assign to undefined `context`. Ensure that `context` is defined in the machine config.",
    );
  }
  const args = { context, event, spawn: noSpawn, self: scope.self, system: scope.system };
  if (typeof assignment === "function") return (assignment as AnyFn)(args, params) as Record<string, unknown>;
  const partial: Record<string, unknown> = {};
  for (const key of Object.keys(assignment as object)) {
    const property = (assignment as Record<string, unknown>)[key];
    partial[key] = typeof property === "function" ? (property as AnyFn)(args, params) : property;
  }
  return partial;
}
