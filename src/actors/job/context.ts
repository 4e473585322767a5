import { jobIdOf } from "../shared/names.js";
import { DEFAULT_MAX_ATTEMPTS, type JobContext, type JobInput, jobInputSchema } from "./schema.js";

export function initialJobContext(raw: JobInput): JobContext {
  const input = jobInputSchema.parse(raw);
  return {
    jobId: jobIdOf(input.taskId, input.index, input.attempt),
    taskId: input.taskId,
    index: input.index,
    attempt: input.attempt,
    user: input.user,
    group: input.group,
    type: input.type,
    priority: input.priority,
    resources: input.resources,
    release: input.release,
    inputs: input.inputs,
    outputs: input.outputs,
    payload: input.payload,
    requestedSite: input.requestedSite,
    site: null,
    pilot: null,
    brokerage: { tries: 0 },
    waitingFor: [],
    dispatch: null,
    producedFiles: [],
    exitCode: null,
    error: null,
    state: null,
    previousState: null,
    timestamps: {},
    lastAtMs: input.atMs ?? null,
    retry: { ...input.retry, maxAttempts: input.retry.maxAttempts ?? DEFAULT_MAX_ATTEMPTS[input.type] },
    excludedSites: input.excludedSites,
    watchdogs: input.watchdogs,
    systemFailures: input.systemFailures,
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
