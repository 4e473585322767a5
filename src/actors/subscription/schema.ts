/** The subscription's states, purposes, events and context, as zod schemas and types. */
import { z } from "zod";
import {
  type AsReceived,
  actorRefSchema,
  atMsSchema,
  fileToMoveSchema,
  nameSchema,
} from "../shared/schemas.js";

export const SUBSCRIPTION_STATES = ["requested", "transferring", "done", "failed", "cancelled"] as const;
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

/** Why the subscription exists decides what its requester hears at the end. */
export const subscriptionPurposeSchema = z.enum(["dispatch", "output", "replication"]);
export type SubscriptionPurpose = z.infer<typeof subscriptionPurposeSchema>;

export const subscriptionInputSchema = z.object({
  /** Defaults to `<dataset>@<site>`; a job's output transfer uses `out.<jobId>@<destination>`. */
  id: nameSchema.optional(),
  dataset: nameSchema,
  site: nameSchema,
  files: z.array(fileToMoveSchema),
  requester: actorRefSchema.nullable().default(null),
  purpose: subscriptionPurposeSchema.default("replication"),
  /**
   * Transfers of one file the subscription asks for before it gives up. The
   * transfer agent already retries each file with backoff and reports
   * `file.failed` only when it gives up, so by default one request is enough.
   */
  maxFileAttempts: z.number().int().positive().default(1),
  atMs: atMsSchema,
});
export type SubscriptionInput = z.input<typeof subscriptionInputSchema>;

/**
 * `subscriptionInputSchema.parse` for a create that reached the machine
 * (checked by `Runtime.send` when it came from outside, typed when this
 * system built it): the defaults filled, nothing checked again. A test holds
 * it equal to the schema's parse.
 */
export function completeSubscriptionInput(raw: SubscriptionInput): z.output<typeof subscriptionInputSchema> {
  return {
    id: raw.id,
    dataset: raw.dataset,
    site: raw.site,
    files: raw.files,
    requester: raw.requester ?? null,
    purpose: raw.purpose ?? "replication",
    maxFileAttempts: raw.maxFileAttempts ?? 1,
    atMs: raw.atMs,
  };
}

export const subscriptionEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("create"), input: subscriptionInputSchema }),
  z.object({ type: z.literal("transfer.started"), atMs: atMsSchema }),
  z.object({ type: z.literal("file.done"), lfn: z.string().min(1), atMs: atMsSchema }),
  z.object({ type: z.literal("file.failed"), lfn: z.string().min(1), reason: z.string(), atMs: atMsSchema }),
  z.object({ type: z.literal("cancel"), reason: z.string(), atMs: atMsSchema }),
]);
export type SubscriptionEvent = AsReceived<z.infer<typeof subscriptionEventSchema>, SubscriptionInput>;

export interface FileProgress {
  sizeBytes: number;
  checksum: string;
  sourceSite: string;
  status: "pending" | "done" | "failed";
  attempts: number;
  lastError: string | null;
}

export interface SubscriptionContext {
  id: string;
  dataset: string;
  site: string;
  purpose: SubscriptionPurpose;
  requester: z.infer<typeof actorRefSchema> | null;
  files: Record<string, FileProgress>;
  progress: { files: number; filesDone: number; bytes: number; bytesDone: number };
  maxFileAttempts: number;
  failure: { lfn: string; reason: string } | null;
  cancelReason: string | null;
  timestamps: Partial<Record<SubscriptionState, number>>;
  lastAtMs: number | null;
}
