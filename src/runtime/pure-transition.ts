/**
 * xstate's `transition()` and `initialTransition()`, minus their cost: those
 * build a fresh inert actor (and actor system) on every call, which dominated
 * the runtime's CPU profile. This builds one inert scope per machine and
 * reuses it; calls are synchronous, so the collected actions cannot mix.
 * Nothing is executed: actions are collected for the runtime to sort.
 */
import { type AnyMachineSnapshot, type AnyStateMachine, createActor } from "xstate";

export class PureTransitions {
  private collected: unknown[] = [];
  private readonly scope: Record<string, unknown>;

  constructor(private readonly machine: AnyStateMachine) {
    // The throwaway actor only lends `self` and `system`; its own initial state (which may lack input) is never used.
    const self = createActor(machine);
    this.scope = {
      self,
      system: self.system,
      id: "",
      sessionId: "",
      defer: () => {},
      logger: () => {},
      stopChild: () => {},
      emit: () => {},
      actionExecutor: (action: unknown) => {
        this.collected.push(action);
      },
    };
  }

  transition(snapshot: AnyMachineSnapshot, event: { type: string }): [AnyMachineSnapshot, unknown[]] {
    this.collected = [];
    const next = this.machine.transition(snapshot, event, this.scope as never) as AnyMachineSnapshot;
    return [next, this.collected];
  }

  initial(input: unknown): [AnyMachineSnapshot, unknown[]] {
    this.collected = [];
    const next = this.machine.getInitialSnapshot(this.scope as never, input) as AnyMachineSnapshot;
    return [next, this.collected];
  }
}

const byMachine = new WeakMap<AnyStateMachine, PureTransitions>();

export function pureTransitionsOf(machine: AnyStateMachine): PureTransitions {
  let transitions = byMachine.get(machine);
  if (!transitions) {
    transitions = new PureTransitions(machine);
    byMachine.set(machine, transitions);
  }
  return transitions;
}
