/**
 * Builds a job's context from its input (defaults filled, a task's shared settings parsed once) and
 * reads its inputs.
 */
import type { z } from "zod";
import { jobIdOf } from "../shared/names.js";
import {
  DEFAULT_MAX_ATTEMPTS,
  type JobContext,
  type JobInput,
  type ParsedJobInput,
  payloadSchema,
  retryPolicySchema,
  watchdogsSchema,
} from "./schema.js";

/** The settings a task shares among its jobs, per schema each object parsed once (the same object reaches every job). */
const parsedShared = new Map<z.ZodType, WeakMap<object, unknown>>();
const NONE: Readonly<Record<string, never>> = Object.freeze({});

function parsedOnce<S extends z.ZodType>(schema: S, value: object): z.output<S> {
  let cache = parsedShared.get(schema);
  if (!cache) {
    cache = new WeakMap();
    parsedShared.set(schema, cache);
  }
  let parsed = cache.get(value) as z.output<S> | undefined;
  if (parsed === undefined) {
    // Frozen: jobs share it, so no job may change another's settings.
    parsed = deepFreeze(schema.parse(value) as z.output<S>);
    cache.set(value, parsed);
  }
  return parsed;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/**
 * `jobInputSchema.parse` for an input built by this system's own code: a
 * task's fan-out or a retry (the only creators of jobs; an input from outside
 * was checked against the job's event schema by Runtime.send). It fills the
 * defaults and checks nothing the types already promise, and parses the
 * settings a task's jobs share once per task, not once per job: zod's parse
 * of a whole job input was the largest single cost of creating one.
 * A test holds it equal to the schema's parse.
 */
export function completeJobInput(raw: JobInput): ParsedJobInput {
  return {
    taskId: raw.taskId,
    user: raw.user,
    group: raw.group ?? null,
    type: raw.type,
    priority: raw.priority,
    resources: raw.resources,
    release: raw.release ?? null,
    outputs: { dataset: raw.outputs.dataset, destination: raw.outputs.destination ?? null },
    payload: raw.payload ? parsedOnce(payloadSchema, raw.payload) : null,
    requestedSite: raw.requestedSite ?? null,
    test: raw.test ?? false,
    share: raw.share ?? null,
    index: raw.index,
    attempt: raw.attempt ?? 1,
    inputs: raw.inputs ?? [],
    retry: parsedOnce(retryPolicySchema, raw.retry ?? NONE),
    excludedSites: raw.excludedSites ?? [],
    watchdogs: parsedOnce(watchdogsSchema, raw.watchdogs ?? NONE),
    systemFailures: raw.systemFailures ?? 0,
    reassignments: raw.reassignments ?? 0,
    startDelayMs: raw.startDelayMs ?? 0,
    atMs: raw.atMs,
  };
}

export function initialJobContext(raw: JobInput): JobContext {
  const input = completeJobInput(raw);
  return {
    jobId: jobIdOf(input.taskId, input.index, input.attempt),
    taskId: input.taskId,
    index: input.index,
    attempt: input.attempt,
    user: input.user,
    group: input.group,
    type: input.type,
    priority: input.priority,
    currentPriority: null,
    share: input.share,
    resources: input.resources,
    release: input.release,
    inputs: input.inputs,
    outputs: input.outputs,
    payload: input.payload,
    requestedSite: input.requestedSite,
    test: input.test,
    site: null,
    pilot: null,
    brokerage: { tries: 0 },
    waitingFor: [],
    dispatch: null,
    producedFiles: [],
    exitCode: null,
    error: null,
    timestamps: {},
    lastAtMs: input.atMs ?? null,
    retry: { ...input.retry, maxAttempts: input.retry.maxAttempts ?? DEFAULT_MAX_ATTEMPTS[input.type] },
    excludedSites: input.excludedSites,
    watchdogs: input.watchdogs,
    systemFailures: input.systemFailures,
    reassignments: input.reassignments,
    reassignment: null,
    startDelayMs: input.startDelayMs,
  };
}

/** Lfns of the job's inputs that `lfns` names, so a report about other files cannot move the job. */
export function inputLfnsAmong(context: JobContext, lfns: string[]): string[] {
  const known = new Set(context.inputs.map((f) => f.lfn));
  return [...new Set(lfns.filter((lfn) => known.has(lfn)))];
}

/** The datasets to watch for the lfns still awaited, each with its lfns. */
export function awaitedByDataset(context: JobContext): Map<string, string[]> {
  const byDataset = new Map<string, string[]>();
  const awaited = new Set(context.waitingFor);
  for (const file of context.inputs) {
    if (!awaited.has(file.lfn)) continue;
    const lfns = byDataset.get(file.dataset) ?? [];
    lfns.push(file.lfn);
    byDataset.set(file.dataset, lfns);
  }
  return byDataset;
}
