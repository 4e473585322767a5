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
 */

import { type AnyStateMachine, cancel, type EventObject, raise } from "xstate";

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

// xstate's state nodes and transitions as this module reads them: public fields of its StateNode.
interface XNode {
  id: string;
  key: string;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  order: number;
  parent?: XNode;
  states: Record<string, XNode>;
  entry: unknown[];
  exit: unknown[];
  transitions: Map<string, XTransition[]>;
  always?: XTransition[];
  initial: { target: XNode[]; actions: unknown[] };
  output?: unknown;
  invoke: unknown[];
  config: { history?: unknown };
}

interface XTransition {
  source: XNode;
  target?: XNode[];
  reenter: boolean;
  guard?: unknown;
  actions: unknown[];
}

type Guard = unknown;
type Action = unknown;
// biome-ignore lint/suspicious/noExplicitAny: implementations are called as xstate calls them
type AnyFn = (...args: any[]) => any;

interface Node {
  x: XNode;
  parent: Node | null;
  order: number;
  type: XNode["type"];
  entry: readonly Action[];
  exit: readonly Action[];
  /** Exact event descriptors. */
  on: Map<string, Transition[]>;
  /** Partial descriptors (`*`, `a.*`), longest first, as xstate orders them. */
  wildcards: [string, Transition[]][];
  always: Transition[] | null;
  /** For a compound node: the child its initial transition targets, and that transition's actions. */
  initialChild: Node | null;
  initialActions: readonly Action[];
  /** Atomic and final nodes: the machine's state value and its string form when this is the leaf. */
  value: StateValue;
  valueString: string;
}

interface Transition {
  source: Node;
  targets: Node[] | null;
  reenter: boolean;
  guard: Guard | undefined;
  actions: readonly Action[];
  /** Per leaf the transition is taken from: what it exits, enters, and the leaf it ends in. */
  plans: Map<Node, Plan>;
}

interface Plan {
  exit: Node[];
  entry: Node[];
  defaultEntry: Set<Node>;
  leaf: Node;
  /** The configuration changed (xstate compares node sets to decide whether the snapshot is new). */
  moved: boolean;
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

/** Why a machine was not compiled: it uses a construct outside the hosted subset. */
export class NotCompilable extends Error {
  override readonly name = "NotCompilable";
}

const BUILTIN_ASSIGN = "xstate.assign";
const BUILTIN_ENQUEUE = "xstate.enqueueActions";
const BUILTIN_RAISE = "xstate.raise";
const BUILTIN_CANCEL = "xstate.cancel";

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
  private readonly root: Node;
  private readonly nodes = new Map<XNode, Node>();
  private readonly byPath = new Map<string, Node>();
  private readonly actionImpls: Record<string, unknown>;
  private readonly guardImpls: Record<string, unknown>;
  private readonly delayImpls: Record<string, unknown>;
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
    const implementations = machine.implementations as {
      actions: Record<string, unknown>;
      guards: Record<string, unknown>;
      delays: Record<string, unknown>;
    };
    this.actionImpls = implementations.actions ?? {};
    this.guardImpls = implementations.guards ?? {};
    this.delayImpls = implementations.delays ?? {};
    this.contextConfig = (machine.config as { context?: unknown }).context;
    if ((machine.config as { output?: unknown }).output !== undefined) {
      throw new NotCompilable("the machine declares an output");
    }
    const xroot = machine.root as unknown as XNode;
    this.root = this.build(xroot, null);
    this.link(this.root);
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
      const plan = this.initialPlan();
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
      const pre = new CompiledState(this.root, context ?? {}, "error", undefined, error);
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
    const leaf = this.leafOfValue(persisted.value);
    const final = leaf.type === "final" && leaf.parent === this.root;
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

  // ---------------------------------------------------------------- building

  private build(x: XNode, parent: Node | null): Node {
    if (x.type === "parallel") throw new NotCompilable(`parallel state ${x.id}`);
    if (x.type === "history" || x.config.history) throw new NotCompilable(`history state ${x.id}`);
    if (x.invoke.length > 0) throw new NotCompilable(`invoke in state ${x.id}`);
    if (x.type === "final" && parent !== null && parent.parent !== null && x.output !== undefined) {
      throw new NotCompilable(`final state ${x.id} declares an output`);
    }
    const node: Node = {
      x,
      parent,
      order: x.order,
      type: x.type,
      entry: x.entry.slice(),
      exit: x.exit.slice(),
      on: new Map(),
      wildcards: [],
      always: null,
      initialChild: null,
      initialActions: [],
      value: "",
      valueString: "",
    };
    this.nodes.set(x, node);
    for (const child of Object.values(x.states)) this.build(child, node);
    return node;
  }

  /** Second pass: transitions reference nodes anywhere in the tree. */
  private link(node: Node): void {
    const x = node.x;
    for (const [descriptor, list] of x.transitions) {
      const transitions = list.map((t) => this.transitionOf(t));
      if (descriptor === "*" || descriptor.endsWith(".*")) node.wildcards.push([descriptor, transitions]);
      else node.on.set(descriptor, transitions);
    }
    node.wildcards.sort((a, b) => b[0].length - a[0].length);
    if (x.always) node.always = x.always.map((t) => this.transitionOf(t));
    if (node.type === "compound") {
      const target = x.initial.target[0];
      if (!target) throw new NotCompilable(`compound state ${x.id} without an initial state`);
      node.initialChild = this.nodes.get(target)!;
      node.initialActions = x.initial.actions.slice();
    }
    for (const action of [...node.entry, ...node.exit, ...node.initialActions])
      this.checkAction(action, x.id);
    for (const child of Object.values(x.states)) this.link(this.nodes.get(child)!);
    if (node.type === "atomic" || node.type === "final") {
      const path: string[] = [];
      for (let n: Node | null = node; n?.parent; n = n.parent) path.unshift(n.x.key);
      node.valueString = path.join(".");
      node.value = valueOfPath(path);
      this.byPath.set(node.valueString, node);
    }
  }

  private transitionOf(t: XTransition): Transition {
    const source = this.nodes.get(t.source);
    if (!source) throw new NotCompilable("a transition from outside the machine");
    const targets = t.target ? t.target.map((target) => this.nodeOf(target)) : null;
    if (t.guard !== undefined) this.checkGuard(t.guard, t.source.id);
    for (const action of t.actions) this.checkAction(action, t.source.id);
    return {
      source,
      targets: targets && targets.length > 0 ? targets : null,
      reenter: t.reenter,
      guard: t.guard,
      actions: t.actions.slice(),
      plans: new Map(),
    };
  }

  private nodeOf(x: XNode): Node {
    const node = this.nodes.get(x);
    if (!node) throw new NotCompilable(`target ${x.id} is not a state of this machine`);
    return node;
  }

  /** Guards built from and/or/not/stateIn read the snapshot: outside the subset. */
  private checkGuard(guard: Guard, where: string): void {
    const resolved =
      typeof guard === "function"
        ? guard
        : this.guardImpls[typeof guard === "string" ? guard : (guard as { type: string }).type];
    // xstate throws for a named guard with no implementation only when it is evaluated: leave that to xstate.
    if (resolved === undefined) throw new NotCompilable(`a guard in ${where} has no implementation`);
    if (typeof resolved === "object") {
      throw new NotCompilable(`a guard in ${where} refers to a guard object`);
    }
    if (resolved && typeof resolved === "function" && "check" in resolved) {
      throw new NotCompilable(`a built-in guard (and/or/not/stateIn) in ${where}`);
    }
  }

  /** Built-in actions other than assign, enqueueActions, raise and cancel are outside the subset. */
  private checkAction(action: Action, where: string): void {
    const resolved = this.implementationOf(action);
    if (!resolved || typeof resolved !== "function" || !("resolve" in resolved)) return;
    const type = (resolved as { type?: string }).type;
    if (type === BUILTIN_ASSIGN || type === BUILTIN_ENQUEUE || type === BUILTIN_CANCEL) return;
    if (type === BUILTIN_RAISE) {
      const delay = (resolved as { delay?: unknown }).delay;
      // A raise without a delay is processed within the step: supported, but the runtime refuses it as impure.
      if (delay !== undefined && typeof delay !== "number" && typeof delay !== "string") {
        if (typeof delay !== "function") throw new NotCompilable(`a raise with an odd delay in ${where}`);
      }
      return;
    }
    throw new NotCompilable(`built-in action ${type} in ${where}`);
  }

  private implementationOf(action: Action): unknown {
    if (typeof action === "function") return action;
    const type = typeof action === "string" ? action : (action as { type?: string } | null)?.type;
    return type === undefined ? undefined : this.actionImpls[type];
  }

  // ---------------------------------------------------------------- running

  private asCompiled(state: MachineState): CompiledState {
    if (state instanceof CompiledState) return state;
    // A state from elsewhere (an xstate snapshot): find its leaf.
    return this.restore(state) as CompiledState;
  }

  private leafOfValue(value: unknown): Node {
    let node = this.root;
    let rest: unknown = value;
    for (;;) {
      if (node.type === "atomic" || node.type === "final") {
        if (
          rest !== undefined &&
          !(typeof rest === "object" && rest !== null && Object.keys(rest).length === 0)
        )
          throw new Error(`State value ${JSON.stringify(value)} goes below atomic state ${node.x.id}`);
        return node;
      }
      let key: string;
      let below: unknown;
      if (rest === undefined) {
        node = node.initialChild!;
        continue;
      }
      if (typeof rest === "string") {
        key = rest;
        below = undefined;
      } else if (typeof rest === "object" && rest !== null) {
        const keys = Object.keys(rest);
        if (keys.length === 0) {
          node = node.initialChild!;
          continue;
        }
        if (keys.length !== 1) throw new Error(`State value ${JSON.stringify(value)} is parallel`);
        key = keys[0]!;
        below = (rest as Record<string, unknown>)[key];
      } else {
        throw new Error(`State value ${JSON.stringify(value)} is not a state value`);
      }
      const child = node.x.states[key];
      if (!child) throw new Error(`State '${key}' does not exist on '${node.x.id}'`);
      node = this.nodes.get(child)!;
      rest = below;
    }
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
    const resolved = isInline ? guard : this.guardImpls[name!];
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
      const plan = this.planOf(t, leaf);
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
      if (plan.defaultEntry.has(node) || (initial && node === this.root)) {
        context = this.run(node.initialActions, context, event, actions, internal);
      }
      if (node.type === "final") {
        const parent = node.parent;
        if (parent && parent !== this.root) {
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
    // A spread makes the same own properties in the same order as xstate's Object.assign({}, ...), faster.
    this.draft = { ...(context as object), ...partial };
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
      const resolved = (isInline ? action : this.actionImpls[type!]) as AnyFn | undefined;
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
            const configured = this.delayImpls[raise.delay];
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

  // ---------------------------------------------------------------- exit and entry sets

  private initialPlan(): Plan {
    const entry = new Set<Node>();
    const defaultEntry = new Set<Node>();
    // xstate enters the root and its initial descendants: the initial transition re-enters from the root.
    entry.add(this.root);
    defaultEntry.add(this.root);
    let node = this.root;
    while (node.type === "compound") {
      const child = node.initialChild!;
      entry.add(child);
      defaultEntry.add(child);
      node = child;
    }
    return { exit: [], entry: [...entry].sort(byOrder), defaultEntry, leaf: node, moved: true };
  }

  /** Exit and entry sets of `t` from `leaf`, computed once (xstate's computeExitSet and computeEntrySet). */
  private planOf(t: Transition, leaf: Node): Plan {
    let plan = t.plans.get(leaf);
    if (plan) return plan;
    const active = new Set<Node>();
    for (let n: Node | null = leaf; n; n = n.parent) active.add(n);
    const domain = transitionDomain(t);
    const exitSet = new Set<Node>();
    if (t.reenter && t.source === domain) exitSet.add(domain);
    for (const node of active) if (domain === null ? false : isDescendant(node, domain)) exitSet.add(node);
    if (domain === null) for (const node of active) exitSet.add(node);
    const exit = [...exitSet].sort((a, b) => b.order - a.order);
    const entrySet = new Set<Node>();
    const defaultEntry = new Set<Node>();
    for (const s of t.targets!) {
      if (t.source !== s || t.source !== domain || t.reenter) {
        entrySet.add(s);
        defaultEntry.add(s);
      }
      addDescendants(s, entrySet, defaultEntry);
    }
    for (const s of t.targets!) {
      const reentrancy = !t.source.parent && t.reenter ? null : domain;
      for (const ancestor of properAncestors(s, domain)) {
        if (!reentrancy || isDescendant(ancestor, reentrancy)) entrySet.add(ancestor);
      }
    }
    const configuration = new Set(active);
    for (const node of exit) configuration.delete(node);
    for (const node of entrySet) configuration.add(node);
    let newLeaf: Node | null = null;
    for (const node of configuration) {
      if ((node.type === "atomic" || node.type === "final") && (!newLeaf || node.order > newLeaf.order))
        newLeaf = node;
    }
    if (!newLeaf) throw new Error(`transition from ${t.source.x.id} leaves no atomic state`);
    const chain = new Set<Node>();
    for (let n: Node | null = newLeaf; n; n = n.parent) chain.add(n);
    if (chain.size !== configuration.size || [...configuration].some((n) => !chain.has(n))) {
      throw new Error(`transition from ${t.source.x.id} leaves a configuration that is not one branch`);
    }
    // xstate keeps the snapshot when the node set is the same (a re-entered state): one branch, one leaf.
    const moved = newLeaf !== leaf;
    plan = { exit, entry: [...entrySet].sort(byOrder), defaultEntry, leaf: newLeaf, moved };
    t.plans.set(leaf, plan);
    return plan;
  }
}

/** The params of a guard or action reference: none for a name or an inline function, else given or computed. */
function paramsOf(ref: unknown, context: unknown, event: EventObject): unknown {
  if (typeof ref !== "object" || ref === null || !("params" in ref)) return undefined;
  const params = (ref as { params: unknown }).params;
  return typeof params === "function" ? (params as AnyFn)({ context, event }) : params;
}

function byOrder(a: Node, b: Node): number {
  return a.order - b.order;
}

function candidatesOf(node: Node, eventType: string): readonly Transition[] {
  const exact = node.on.get(eventType);
  if (node.wildcards.length === 0) return exact ?? NONE;
  const matching: Transition[] = exact ? [...exact] : [];
  for (const [descriptor, list] of node.wildcards) {
    if (descriptor !== eventType && matchesDescriptor(eventType, descriptor)) matching.push(...list);
  }
  return matching;
}

const NONE: readonly Transition[] = [];

function matchesDescriptor(eventType: string, descriptor: string): boolean {
  if (descriptor === eventType || descriptor === "*") return true;
  if (!descriptor.endsWith(".*")) return false;
  const partial = descriptor.split(".");
  const tokens = eventType.split(".");
  for (let i = 0; i < partial.length; i++) {
    if (partial[i] === "*") return i === partial.length - 1;
    if (partial[i] !== tokens[i]) return false;
  }
  return true;
}

function isDescendant(child: Node, parent: Node): boolean {
  let marker = child;
  while (marker.parent && marker.parent !== parent) marker = marker.parent;
  return marker.parent === parent;
}

/** Ancestors of `node` up to, not including, `to` (all of them when `to` is null). */
function properAncestors(node: Node, to: Node | null): Node[] {
  const ancestors: Node[] = [];
  if (to === node) return ancestors;
  for (let m = node.parent; m && m !== to; m = m.parent) ancestors.push(m);
  return ancestors;
}

/** xstate's getTransitionDomain for a transition with targets; null where xstate answers undefined. */
function transitionDomain(t: Transition): Node | null {
  const targets = t.targets!;
  if (!t.reenter && targets.every((target) => target === t.source || isDescendant(target, t.source))) {
    return t.source;
  }
  const nodes = [...targets, t.source];
  const [head, ...tail] = nodes;
  for (const ancestor of properAncestors(head!, null)) {
    if (tail.every((n) => isDescendant(n, ancestor))) return ancestor;
  }
  if (t.reenter) return null;
  let root = t.source;
  while (root.parent) root = root.parent;
  return root;
}

function addDescendants(node: Node, entry: Set<Node>, defaultEntry: Set<Node>): void {
  if (node.type !== "compound") return;
  const initial = node.initialChild!;
  entry.add(initial);
  defaultEntry.add(initial);
  addDescendants(initial, entry, defaultEntry);
  for (const ancestor of properAncestors(initial, node)) entry.add(ancestor);
}

function valueOfPath(path: string[]): StateValue {
  let value: StateValue = path[path.length - 1] ?? "";
  for (let i = path.length - 2; i >= 0; i--) value = { [path[i]!]: value };
  return value;
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
