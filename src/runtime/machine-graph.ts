/**
 * A machine's xstate state nodes read once into a graph the compiled
 * executor walks: nodes with their transitions by event, initial children and
 * state values, every construct outside the hosted subset refused here (as
 * `NotCompilable`), and each transition's exit and entry sets per leaf,
 * computed the first time they are needed (xstate's computeExitSet and
 * computeEntrySet for a single branch).
 */
import type { AnyStateMachine } from "xstate";
import type { StateValue } from "./compiled-machine.js";

// xstate's state nodes and transitions as this module reads them: public fields of its StateNode.
export interface XNode {
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

export interface XTransition {
  source: XNode;
  target?: XNode[];
  reenter: boolean;
  guard?: unknown;
  actions: unknown[];
}

export type Guard = unknown;
export type Action = unknown;
// biome-ignore lint/suspicious/noExplicitAny: implementations are called as xstate calls them
export type AnyFn = (...args: any[]) => any;

export interface Node {
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

export interface Transition {
  source: Node;
  targets: Node[] | null;
  reenter: boolean;
  guard: Guard | undefined;
  actions: readonly Action[];
  /** Per leaf the transition is taken from: what it exits, enters, and the leaf it ends in. */
  plans: Map<Node, Plan>;
}

export interface Plan {
  exit: Node[];
  entry: Node[];
  defaultEntry: Set<Node>;
  leaf: Node;
  /** The configuration changed (xstate compares node sets to decide whether the snapshot is new). */
  moved: boolean;
}

/** Why a machine was not compiled: it uses a construct outside the hosted subset. */
export class NotCompilable extends Error {
  override readonly name = "NotCompilable";
}

export const BUILTIN_ASSIGN = "xstate.assign";
export const BUILTIN_ENQUEUE = "xstate.enqueueActions";
export const BUILTIN_RAISE = "xstate.raise";
export const BUILTIN_CANCEL = "xstate.cancel";

export class MachineGraph {
  readonly root: Node;
  private readonly nodes = new Map<XNode, Node>();
  readonly byPath = new Map<string, Node>();
  readonly actionImpls: Record<string, unknown>;
  readonly guardImpls: Record<string, unknown>;
  readonly delayImpls: Record<string, unknown>;

  constructor(machine: AnyStateMachine) {
    const implementations = machine.implementations as {
      actions: Record<string, unknown>;
      guards: Record<string, unknown>;
      delays: Record<string, unknown>;
    };
    this.actionImpls = implementations.actions ?? {};
    this.guardImpls = implementations.guards ?? {};
    this.delayImpls = implementations.delays ?? {};
    const xroot = machine.root as unknown as XNode;
    this.root = this.build(xroot, null);
    this.link(this.root);
  }

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

  /** The leaf a persisted state value names (its initial descendants where it stops above one). */
  leafOfValue(value: unknown): Node {
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
}

export function candidatesOf(node: Node, eventType: string): readonly Transition[] {
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

function valueOfPath(path: string[]): StateValue {
  let value: StateValue = path[path.length - 1] ?? "";
  for (let i = path.length - 2; i >= 0; i--) value = { [path[i]!]: value };
  return value;
}
