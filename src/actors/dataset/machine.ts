/** The dataset machine: files and replicas while open, watchers woken, closed and frozen. */
import { assign, setup } from "xstate";
import { effectActions } from "../../runtime/effects.js";
import type { JobEvent } from "../job/schema.js";
import { fanOut, sendEventAction } from "../shared/effects.js";
import { refs } from "../shared/names.js";
import { eventTimeMs, stampState, timeField } from "../shared/time.js";
import { addReplica, conflictingLfns, lfnsByWatcher, mergeFiles, withoutKeys } from "./files.js";
import {
  completeDatasetInput,
  type DatasetContext,
  type DatasetEvent,
  type DatasetInput,
  type DatasetState,
} from "./schema.js";

type WatchEvent = Extract<DatasetEvent, { type: "watch" }>;

function initialContext(raw: DatasetInput): DatasetContext {
  const input = completeDatasetInput(raw);
  const merged = mergeFiles(
    { files: {}, fileCount: 0, totalBytes: 0 } as DatasetContext,
    input.files.filter((file, i) => input.files.findIndex((f) => f.lfn === file.lfn) === i),
  );
  const replicas: Record<string, string[]> = {};
  for (const [site, lfns] of Object.entries(input.replicas)) {
    const known = lfns.filter((lfn) => merged.files[lfn]);
    if (known.length > 0) replicas[site] = [...new Set(known)];
  }
  return {
    name: input.name,
    parent: input.parent,
    files: merged.files,
    fileCount: merged.fileCount,
    totalBytes: merged.totalBytes,
    replicas,
    watchers: {},
    timestamps: {},
    lastAtMs: input.atMs ?? null,
  };
}

function jobEvent(event: JobEvent): JobEvent {
  return event;
}

export const datasetMachine = setup({
  types: {
    context: {} as DatasetContext,
    input: {} as DatasetInput,
    events: {} as DatasetEvent,
  },
  actions: {
    ...effectActions,
    enterState: assign(({ context, event }, params: { state: DatasetState }) =>
      stampState(context, event, params.state),
    ),
    /** Adds the files, wakes jobs waiting for them, and confirms to the registrant (through the parent if merging). */
    registerFiles: fanOut<DatasetContext, DatasetEvent>(({ context, event, enqueue }) => {
      if (event.type !== "files.add") return;
      const merged = mergeFiles(context, event.files);
      const lfns = event.files.map((f) => f.lfn);
      const atMs = eventTimeMs(event, context.lastAtMs);
      enqueue.assign({
        files: merged.files,
        fileCount: merged.fileCount,
        totalBytes: merged.totalBytes,
        replicas: event.site ? addReplica(context.replicas, event.site, lfns) : context.replicas,
        watchers: withoutKeys(context.watchers, merged.addedLfns),
        lastAtMs: atMs,
      });
      for (const [jobId, available] of lfnsByWatcher(context.watchers, merged.addedLfns)) {
        enqueue(
          sendEventAction(
            refs.job(jobId),
            jobEvent({ type: "input.available", dataset: context.name, lfns: available, ...timeField(atMs) }),
          ),
        );
      }
      if (context.parent) {
        // The parent answers the registrant, so a job only finishes once its files are in the task's output dataset.
        enqueue(sendEventAction(refs.dataset(context.parent), { ...event }));
      } else if (event.reply) {
        enqueue(
          sendEventAction(
            event.reply.to,
            jobEvent({
              type: "outputs.registered",
              requestId: event.reply.requestId,
              dataset: context.name,
              lfns,
              ...timeField(atMs),
            }),
          ),
        );
      }
    }),
    /** Answers at once for files already here; while open, remembers the rest, else reports them missing for good. */
    answerWatch: fanOut<DatasetContext, DatasetEvent, { canStillArrive: boolean }>(
      ({ context, event, enqueue }, params) => {
        if (event.type !== "watch") return;
        const watch = event as WatchEvent;
        const present = watch.lfns.filter((lfn) => context.files[lfn]);
        const absent = watch.lfns.filter((lfn) => !context.files[lfn]);
        const atMs = eventTimeMs(event, context.lastAtMs);
        if (present.length > 0) {
          enqueue(
            sendEventAction(
              refs.job(watch.jobId),
              jobEvent({ type: "input.available", dataset: context.name, lfns: present, ...timeField(atMs) }),
            ),
          );
        }
        if (absent.length === 0) return;
        if (params.canStillArrive) {
          const watchers = { ...context.watchers };
          for (const lfn of absent) watchers[lfn] = [...new Set([...(watchers[lfn] ?? []), watch.jobId])];
          enqueue.assign({ watchers, lastAtMs: atMs });
        } else {
          enqueue(
            sendEventAction(
              refs.job(watch.jobId),
              jobEvent({ type: "input.missing", dataset: context.name, lfns: absent, ...timeField(atMs) }),
            ),
          );
        }
      },
    ),
    /** No file can be added any more: every job still waiting learns its inputs will never come from here. */
    releaseWatchers: fanOut<DatasetContext, DatasetEvent>(({ context, event, enqueue }) => {
      const atMs = eventTimeMs(event, context.lastAtMs);
      for (const [jobId, lfns] of lfnsByWatcher(context.watchers, Object.keys(context.watchers))) {
        enqueue(
          sendEventAction(
            refs.job(jobId),
            jobEvent({ type: "input.missing", dataset: context.name, lfns, ...timeField(atMs) }),
          ),
        );
      }
      enqueue.assign({ watchers: {} });
    }),
    recordReplica: assign(({ context, event }) => {
      if (event.type !== "replica.add") return {};
      return {
        replicas: addReplica(context.replicas, event.site, event.lfns),
        lastAtMs: eventTimeMs(event, context.lastAtMs),
      };
    }),
  },
  guards: {
    filesFit: ({ context, event }) =>
      event.type === "files.add" && conflictingLfns(context.files, event.files).length === 0,
    replicaOfKnownFiles: ({ context, event }) =>
      event.type === "replica.add" && event.lfns.every((lfn) => context.files[lfn] !== undefined),
    bornFrozen: ({ event }) => (event as { input?: DatasetInput }).input?.state === "frozen",
    bornClosed: ({ event }) => (event as { input?: DatasetInput }).input?.state === "closed",
  },
}).createMachine({
  id: "dataset",
  context: ({ input }) => initialContext(input),
  initial: "created",
  on: {
    "replica.add": { guard: "replicaOfKnownFiles", actions: "recordReplica" },
  },
  states: {
    created: {
      always: [
        { guard: "bornFrozen", target: "frozen" },
        { guard: "bornClosed", target: "closed" },
        { target: "open" },
      ],
    },
    open: {
      entry: { type: "enterState", params: { state: "open" } },
      on: {
        "files.add": { guard: "filesFit", actions: "registerFiles" },
        watch: { actions: { type: "answerWatch", params: { canStillArrive: true } } },
        close: { target: "closed", actions: "releaseWatchers" },
        freeze: { target: "frozen", actions: "releaseWatchers" },
      },
    },
    closed: {
      entry: { type: "enterState", params: { state: "closed" } },
      on: {
        watch: { actions: { type: "answerWatch", params: { canStillArrive: false } } },
        freeze: "frozen",
      },
    },
    frozen: {
      entry: { type: "enterState", params: { state: "frozen" } },
      on: {
        watch: { actions: { type: "answerWatch", params: { canStillArrive: false } } },
      },
    },
  },
});
