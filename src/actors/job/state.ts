/**
 * A job's top-level state, read from its machine state: the one place that
 * says which state a job is in (`defined` for `{defined: "brokering"}`, or
 * for the stored state's name `defined.brokering`). The context does not
 * keep it (job machine version 8 dropped `state` and `previousState`).
 */
import type { JobState } from "./schema.js";

/** The top-level state of a job's machine state or view (`{value}`), or of its state's name. */
export function jobStateOf(state: { value: unknown } | string): JobState {
  if (typeof state === "string") {
    const dot = state.indexOf(".");
    return (dot < 0 ? state : state.slice(0, dot)) as JobState;
  }
  const value = state.value;
  return (typeof value === "string" ? value : Object.keys(value as object)[0]!) as JobState;
}
