/**
 * An actor's snapshot in the store: written as the persisted machine state
 * (with the kind's constant context fields kept apart, written only when they
 * change) and restored (checked, migrated, turned back into a machine state
 * without running any action).
 */
import type { ActorKey } from "../store/types.js";
import { parseActorKey } from "./actor-ref.js";
import type { MachineState } from "./compiled-machine.js";
import { RuntimeError } from "./errors.js";
import type { KindDefinition, PersistedState } from "./kinds.js";
import { runnerOf } from "./machine-runner.js";
import {
  decodeConstants,
  decodeSnapshotRecord,
  encodeRecord,
  encodeSnapshotRecord,
  type SnapshotRecord,
  stateValueToString,
} from "./records.js";
import type { LiveActor } from "./step.js";

/** The stored bytes of a machine snapshot: kind, machine version and the whole persisted state. */
export function encodeSnapshot(definition: KindDefinition, state: MachineState): Buffer {
  const record: SnapshotRecord = {
    k: definition.kind,
    mv: definition.version,
    s: persistState(state, state.context),
  };
  return encodeSnapshotRecord(record);
}

/**
 * What a commit stores of an actor whose kind declares `constantContext`: the
 * snapshot without those fields, and the fields themselves only when the store
 * does not hold these very values yet (a new actor, one restored from a full
 * or migrated snapshot, or a transition that replaced one of them). Sets
 * `live.constants` to what the commit will store.
 */
const constantKeySets = new WeakMap<readonly string[], ReadonlySet<string>>();

export function encodeSnapshotParts(
  definition: KindDefinition,
  live: LiveActor,
): { snapshot: Buffer; constants: Buffer | null } {
  const keys = definition.constantContext;
  if (!keys || keys.length === 0)
    return { snapshot: encodeSnapshot(definition, live.state), constants: null };
  const context = live.state.context as Record<string, unknown>;
  let constant = constantKeySets.get(keys);
  if (!constant) {
    constant = new Set(keys);
    constantKeySets.set(keys, constant);
  }
  const variable: Record<string, unknown> = {};
  for (const key in context) if (!constant.has(key)) variable[key] = context[key];
  const record: SnapshotRecord = {
    k: definition.kind,
    mv: definition.version,
    s: persistState(live.state, variable),
  };
  const stored = live.constants;
  let constants: Buffer | null = null;
  if (!stored || keys.some((key) => stored[key] !== context[key])) {
    const values: Record<string, unknown> = {};
    for (const key of keys) if (key in context) values[key] = context[key];
    live.constants = values;
    constants = encodeRecord(values);
  }
  return { snapshot: encodeSnapshotRecord(record), constants };
}

function persistState(state: MachineState, context: unknown): PersistedState {
  const persisted: PersistedState = { value: state.value, context, status: state.status };
  if (state.status === "done") persisted.output = state.output;
  return persisted;
}

/**
 * Restores a stored snapshot without running any action (restore is not a
 * transition), checking kind, machine version and status.
 */
export function restore(
  definition: KindDefinition,
  actor: ActorKey,
  version: number,
  bytes: Buffer,
  constantBytes: Buffer | null = null,
): LiveActor {
  let record: SnapshotRecord;
  let constants: Record<string, unknown> | null = null;
  try {
    record = decodeSnapshotRecord(bytes);
    if (constantBytes) constants = decodeConstants(constantBytes);
  } catch (err) {
    throw new RuntimeError(
      "CORRUPT_SNAPSHOT",
      `${actor}: stored snapshot is unreadable: ${(err as Error).message}`,
    );
  }
  if (constants) {
    const context = record.s.context;
    if (typeof context !== "object" || context === null || Array.isArray(context)) {
      throw new RuntimeError("CORRUPT_SNAPSHOT", `${actor}: stored context is not an object`);
    }
    // Fields in the snapshot win: a full snapshot imported over old constants carries its own.
    record.s.context = { ...constants, ...context };
  }
  if (record.k !== definition.kind || parseActorKey(actor).kind !== definition.kind) {
    throw new RuntimeError("CORRUPT_SNAPSHOT", `${actor}: stored snapshot belongs to kind ${record.k}`);
  }
  let persisted = record.s;
  if (record.mv !== definition.version) {
    const oldest = definition.minVersion ?? definition.version;
    if (record.mv > definition.version || record.mv < oldest || !definition.migrate) {
      throw new RuntimeError(
        "UNSUPPORTED_MACHINE_VERSION",
        `${actor}: snapshot of machine version ${record.mv}, this node supports ${oldest}..${definition.version}`,
      );
    }
    persisted = definition.migrate(record.mv, persisted);
    // A migration may have rewritten a constant field: the next commit stores them again.
    constants = null;
  }
  if (persisted.status === "error" || persisted.status === "stopped") {
    throw new RuntimeError("CORRUPT_SNAPSHOT", `${actor}: stored snapshot has status ${persisted.status}`);
  }
  let state: MachineState;
  try {
    state = runnerOf(definition.machine).restore({
      value: persisted.value,
      context: persisted.context,
      status: "active",
    });
  } catch (err) {
    throw new RuntimeError(
      "CORRUPT_SNAPSHOT",
      `${actor}: stored state does not fit the machine: ${(err as Error).message}`,
    );
  }
  if (state.status !== persisted.status) {
    throw new RuntimeError(
      "CORRUPT_SNAPSHOT",
      `${actor}: stored status ${persisted.status} but state ${stateValueToString(persisted.value)} is ${state.status}`,
    );
  }
  // Compared by reference on the next commit: a field the blob lacks or the snapshot overrode differs, and is written.
  return { version, state, constants };
}
