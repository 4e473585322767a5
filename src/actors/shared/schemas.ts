/** Zod schemas and types the workload kinds share: names, times, files, error classes, job outcomes. */
import { z } from "zod";
import { errorClassSchema } from "../../protocol/messages.js";
import { actorIdSchema, actorRefSchema } from "../../runtime/actor-ref.js";

/** Ids and names of workload actors: they become actor ids, so the runtime's id rules apply. */
export const nameSchema = actorIdSchema;
export { actorRefSchema };

/** Milliseconds since the epoch, as told by the sender: machines never read a clock. */
export const atMsSchema = z.number().nonnegative().optional();

export const durationMsSchema = z.number().int().nonnegative();

export const logicalFileSchema = z.object({
  lfn: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
  checksum: z.string().min(1),
});
export type LogicalFile = z.infer<typeof logicalFileSchema>;

/** A file to move and the site that already holds it. */
export const fileToMoveSchema = logicalFileSchema.extend({ sourceSite: nameSchema });
export type FileToMove = z.infer<typeof fileToMoveSchema>;

/** The classes of failure: the wire protocol defines them, as pilots report them. */
export const ERROR_CLASSES = errorClassSchema.options;
export { errorClassSchema };
export type ErrorClass = z.infer<typeof errorClassSchema>;

/**
 * The failures a site is to blame for: its pilots, storage, network and
 * services. A payload's own error or a walltime overrun is the user's (it
 * counts against the task), a kill or a brokerage failure nobody's.
 */
export const SITE_ERROR_CLASSES: readonly ErrorClass[] = [
  "pilot",
  "stagein",
  "stageout",
  "lostHeartbeat",
  "system",
];

/** A failure of unknown class counts against the site, as before classes were reported. */
export function isSiteFailure(errorClass: ErrorClass | null | undefined): boolean {
  return errorClass === null || errorClass === undefined || SITE_ERROR_CLASSES.includes(errorClass);
}

export const jobTypeSchema = z.enum(["production", "analysis"]);
export type JobType = z.infer<typeof jobTypeSchema>;

export const JOB_OUTCOMES = ["finished", "failed", "cancelled", "closed"] as const;
export const jobOutcomeSchema = z.enum(JOB_OUTCOMES);

/** Whether a job state is final (an outcome). */
export function isJobOutcome(state: string): state is (typeof JOB_OUTCOMES)[number] {
  return (JOB_OUTCOMES as readonly string[]).includes(state);
}
export type JobOutcome = z.infer<typeof jobOutcomeSchema>;

/**
 * An event union as machines receive it. The runtime validates events but
 * hands the machine the raw object, so `create` carries the input before
 * defaults; the machine applies them when it builds its context.
 */
export type AsReceived<TEvent extends { type: string }, TInput> =
  | Exclude<TEvent, { type: "create" }>
  | { type: "create"; input: TInput };
