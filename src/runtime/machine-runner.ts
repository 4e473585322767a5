/**
 * How the runtime runs a kind's machine: compiled (`compiled-machine.ts`)
 * when the machine fits the hosted subset, else xstate itself. With
 * PANDA_VERIFY_MACHINES set (the test suite sets it) every step runs on both
 * and any difference stops the process: xstate is the reference semantics.
 */

import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from "xstate";
import { encode } from "../protocol/codec.js";
import {
  type CompiledStep,
  compileMachine,
  type MachineState,
  type ResolvedAction,
} from "./compiled-machine.js";
import { pureTransitionsOf } from "./pure-transition.js";
import { stateValueToString } from "./records.js";

export type { CompiledStep as MachineStep, MachineState } from "./compiled-machine.js";

export interface MachineRunner {
  /** The first state for `input`; a machine that fails to start comes back with status `error`. */
  initial(input: unknown): CompiledStep;
  /** One event; throws where the machine throws (a guard or an action). */
  transition(state: MachineState, event: EventObject): CompiledStep;
  /** A persisted state back as a live one (no action runs); throws when the value is not a state of the machine. */
  restore(persisted: { value: unknown; context: unknown; status: string; output?: unknown }): MachineState;
  /** `a.b` for `{a: "b"}`. */
  valueString(state: MachineState): string;
}

/** xstate itself, through the runtime's reusable pure scope. */
class XstateRunner implements MachineRunner {
  constructor(private readonly machine: AnyStateMachine) {}

  initial(input: unknown): CompiledStep {
    const [state, actions] = pureTransitionsOf(this.machine).initial(input);
    return { state, actions: actions as ResolvedAction[], accepted: state.status !== "error" };
  }

  transition(state: MachineState, event: EventObject): CompiledStep {
    const current = this.snapshotOf(state);
    const [next, actions] = pureTransitionsOf(this.machine).transition(current, event);
    // xstate hands back the very snapshot when nothing is enabled; `can` tells an enabled no-op apart.
    const accepted = next !== current || actions.length > 0 || current.can(event);
    return { state: next === current ? state : next, actions: actions as ResolvedAction[], accepted };
  }

  restore(persisted: { value: unknown; context: unknown; status: string; output?: unknown }): MachineState {
    return this.machine.resolveState({
      value: persisted.value as never,
      context: persisted.context as never,
      ...(persisted.status === "done" ? { status: "done" as const, output: persisted.output } : {}),
    }) as AnyMachineSnapshot;
  }

  valueString(state: MachineState): string {
    return stateValueToString(state.value);
  }

  /** An xstate snapshot for a state that may come from the compiled runner (the verifier shares states). */
  snapshotOf(state: MachineState): AnyMachineSnapshot {
    if ((state as AnyMachineSnapshot).machine === this.machine) return state as AnyMachineSnapshot;
    return this.restore({
      value: state.value,
      context: state.context,
      status: state.status,
      output: state.output,
    }) as AnyMachineSnapshot;
  }
}

/** Runs the compiled machine and xstate side by side and stops the process at the first difference. */
class VerifyingRunner implements MachineRunner {
  private readonly reference: XstateRunner;

  constructor(
    private readonly compiled: MachineRunner,
    machine: AnyStateMachine,
    private readonly onMismatch: (report: string) => void,
  ) {
    this.reference = new XstateRunner(machine);
  }

  initial(input: unknown): CompiledStep {
    const ours = this.compiled.initial(input);
    const theirs = this.reference.initial(input);
    this.compare("initial", input, ours, theirs);
    return ours;
  }

  transition(state: MachineState, event: EventObject): CompiledStep {
    let ours: CompiledStep | Error;
    let theirs: CompiledStep | Error;
    try {
      ours = this.compiled.transition(state, event);
    } catch (err) {
      ours = err as Error;
    }
    try {
      theirs = this.reference.transition(this.reference.snapshotOf(state), event);
    } catch (err) {
      theirs = err as Error;
    }
    if (ours instanceof Error || theirs instanceof Error) {
      if (!(ours instanceof Error && theirs instanceof Error)) {
        this.report(`${event.type} from ${this.valueString(state)}`, {
          compiled: ours instanceof Error ? `threw ${ours.message}` : "did not throw",
          xstate: theirs instanceof Error ? `threw ${theirs.message}` : "did not throw",
        });
      }
      if (ours instanceof Error) throw ours;
      return ours;
    }
    this.compare(`${event.type} from ${this.valueString(state)}`, event, ours, theirs);
    return ours;
  }

  restore(persisted: { value: unknown; context: unknown; status: string; output?: unknown }): MachineState {
    const ours = this.compiled.restore(persisted);
    const theirs = this.reference.restore(persisted);
    if (JSON.stringify(ours.value) !== JSON.stringify(theirs.value) || ours.status !== theirs.status) {
      this.report("restore", {
        persisted,
        compiled: [ours.value, ours.status],
        xstate: [theirs.value, theirs.status],
      });
    }
    return ours;
  }

  valueString(state: MachineState): string {
    return this.compiled.valueString(state);
  }

  private compare(what: string, input: unknown, ours: CompiledStep, theirs: CompiledStep): void {
    const essence = (step: CompiledStep) => ({
      value: step.state.value,
      status: step.state.status,
      output: step.state.output,
      accepted: step.accepted,
      context: step.state.status === "error" ? null : step.state.context,
      actions: step.actions.map((a) => ({ type: a.type, params: a.params })),
    });
    const a = essence(ours);
    const b = essence(theirs);
    // Byte equality of the encoding: the same data in the same key order, as a commit would store it.
    if (!encode(a).equals(encode(b))) this.report(what, { input, compiled: a, xstate: b });
  }

  private report(what: string, detail: Record<string, unknown>): void {
    this.onMismatch(`compiled machine differs from xstate at ${what}: ${safeJson(detail)}`);
  }
}

/** Enough of a report to see the difference, not the whole of every context involved. */
const MAX_REPORT_CHARS = 6000;

function safeJson(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_key, v) => (typeof v === "function" ? `[function ${v.name}]` : v));
  } catch {
    text = String(value);
  }
  return text.length <= MAX_REPORT_CHARS ? text : `${text.slice(0, MAX_REPORT_CHARS)}…`;
}

/** Stops the process: a verifier that only logged would let a test pass on wrong semantics. */
function stopOnMismatch(report: string): never {
  process.stderr.write(`${report}\n`);
  process.exit(70);
}

const runners = new WeakMap<AnyStateMachine, MachineRunner>();

/** Whether every step also runs on xstate and is compared (PANDA_VERIFY_MACHINES=1). */
export function verifyingMachines(): boolean {
  const flag = process.env.PANDA_VERIFY_MACHINES;
  return flag !== undefined && flag !== "" && flag !== "0";
}

/** The runner for `machine`: compiled when it can be, verified against xstate when asked. */
export function runnerOf(machine: AnyStateMachine): MachineRunner {
  let runner = runners.get(machine);
  if (!runner) {
    const compiled = compileMachine(machine);
    runner = compiled ?? new XstateRunner(machine);
    if (compiled && verifyingMachines()) runner = new VerifyingRunner(compiled, machine, stopOnMismatch);
    runners.set(machine, runner);
  }
  return runner;
}

/** A runner that compares and hands every difference to `onMismatch`: for tests of the compiler itself. */
export function verifyingRunner(
  machine: AnyStateMachine,
  onMismatch: (report: string) => void,
): MachineRunner {
  const compiled = compileMachine(machine);
  if (!compiled) throw new Error("machine is not compiled");
  return new VerifyingRunner(compiled, machine, onMismatch);
}

/** xstate's own runner, for comparisons. */
export function xstateRunner(machine: AnyStateMachine): MachineRunner {
  return new XstateRunner(machine);
}
