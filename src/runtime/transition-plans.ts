/**
 * A transition's exit and entry sets from a given leaf (xstate's
 * computeExitSet and computeEntrySet, for a machine without parallel
 * states), computed the first time a transition is taken from that leaf and
 * kept on the transition.
 */
import type { Node, Plan, Transition } from "./machine-graph.js";

/** What entering the machine (from `root`) enters. */
export function initialPlan(root: Node): Plan {
  const entry = new Set<Node>();
  const defaultEntry = new Set<Node>();
  // xstate enters the root and its initial descendants: the initial transition re-enters from the root.
  entry.add(root);
  defaultEntry.add(root);
  let node = root;
  while (node.type === "compound") {
    const child = node.initialChild!;
    entry.add(child);
    defaultEntry.add(child);
    node = child;
  }
  return { exit: [], entry: [...entry].sort(byOrder), defaultEntry, leaf: node, moved: true };
}

/** Exit and entry sets of `t` from `leaf`, computed once (xstate's computeExitSet and computeEntrySet). */
export function planOf(t: Transition, leaf: Node): Plan {
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

function byOrder(a: Node, b: Node): number {
  return a.order - b.order;
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
