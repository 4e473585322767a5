/** The dataset's states, events and context, as zod schemas and types. */
import { z } from "zod";
import {
  type AsReceived,
  actorRefSchema,
  atMsSchema,
  logicalFileSchema,
  nameSchema,
} from "../shared/schemas.js";

export const DATASET_STATES = ["open", "closed", "frozen"] as const;
export const datasetStateSchema = z.enum(DATASET_STATES);
export type DatasetState = z.infer<typeof datasetStateSchema>;

const lfnListSchema = z.array(z.string().min(1));

export const datasetInputSchema = z.object({
  name: nameSchema,
  /** Dispatch datasets are born frozen: their content is fixed by the job that needs them. */
  state: datasetStateSchema.default("open"),
  files: z.array(logicalFileSchema).default([]),
  /** Sites already holding some of the files: `site -> lfns`. */
  replicas: z.record(nameSchema, lfnListSchema).default({}),
  /** A sub-destination dataset merges every file into its parent, the task's output dataset. */
  parent: nameSchema.nullable().default(null),
  atMs: atMsSchema,
});
export type DatasetInput = z.input<typeof datasetInputSchema>;

/**
 * `datasetInputSchema.parse` for a create that reached the machine: one from
 * outside was checked against the event's schema by `Runtime.send`, and one
 * this system's own code built (a job's dispatch dataset, a task's outputs)
 * is typed. It fills the defaults and checks nothing again: zod's parse was
 * most of the cost of creating a dispatch dataset. A test holds it equal to
 * the schema's parse.
 */
export function completeDatasetInput(raw: DatasetInput): z.output<typeof datasetInputSchema> {
  return {
    name: raw.name,
    state: raw.state ?? "open",
    files: raw.files ?? [],
    replicas: raw.replicas ?? {},
    parent: raw.parent ?? null,
    atMs: raw.atMs,
  };
}

/** Who wants to hear that a `files.add` took effect, and the id it echoes back. */
export const registrationReplySchema = z.object({ to: actorRefSchema, requestId: z.string().min(1) });

export const datasetEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: datasetInputSchema }),
  z.object({
    type: z.literal("files.add"),
    files: z.array(logicalFileSchema).min(1),
    /** The site whose storage holds the new files, if any. */
    site: nameSchema.optional(),
    reply: registrationReplySchema.optional(),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("close"), atMs: atMsSchema }),
  z.object({ type: z.literal("freeze"), atMs: atMsSchema }),
  z.object({
    type: z.literal("replica.add"),
    site: nameSchema,
    lfns: lfnListSchema.min(1),
    atMs: atMsSchema,
  }),
  z.object({ type: z.literal("watch"), jobId: nameSchema, lfns: lfnListSchema.min(1), atMs: atMsSchema }),
]);
export type DatasetEvent = AsReceived<z.infer<typeof datasetEventSchema>, DatasetInput>;

export interface DatasetFileEntry {
  sizeBytes: number;
  checksum: string;
}

export interface DatasetContext {
  name: string;
  parent: string | null;
  files: Record<string, DatasetFileEntry>;
  fileCount: number;
  totalBytes: number;
  replicas: Record<string, string[]>;
  /** lfn -> ids of jobs waiting for it to be produced. */
  watchers: Record<string, string[]>;
  timestamps: Partial<Record<DatasetState, number>>;
  lastAtMs: number | null;
}
