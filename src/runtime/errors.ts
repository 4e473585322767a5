/** The runtime's failures: the codes a caller switches on, and the one class that carries them. */
import { CodedError } from "../protocol/coded-error.js";

/** Every failure the runtime reports to a caller, with a code to switch on. */
export type RuntimeErrorCode =
  | "UNKNOWN_KIND"
  | "BAD_ACTOR_REF"
  | "BAD_EVENT"
  | "EVENT_NOT_ACCEPTED"
  | "ACTOR_NOT_FOUND"
  | "ACTOR_EXISTS"
  | "CORRUPT_SNAPSHOT"
  | "UNSUPPORTED_MACHINE_VERSION"
  | "IMPURE_MACHINE"
  | "MACHINE_ERROR"
  | "SHARD_LOST"
  | "CONFLICT"
  | "STOPPED";

export class RuntimeError extends CodedError<RuntimeErrorCode> {
  override readonly name = "RuntimeError";
}

export function isRuntimeError(err: unknown, code?: RuntimeErrorCode): err is RuntimeError {
  return err instanceof RuntimeError && (code === undefined || err.code === code);
}

/**
 * A refusal that is an outcome, not a fault (an event the actor's state does
 * not take, an actor that does not exist or exists already): made without a
 * stack trace, which says nothing about it and, when dispatches of several
 * nodes race for one job, costs more than the refusal's whole commit.
 */
export function refusalError(code: RuntimeErrorCode, message: string): RuntimeError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RuntimeError(code, message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
