/**
 * Connects subscriptions to the transfer agent. A `transfer.start` effect is
 * acknowledged only when its transfer has completed, so a server that dies
 * mid-copy redelivers it and the new agent carries on (files already at the
 * destination with the right checksum are skipped).
 */
import { z } from "zod";
import { refs } from "../actors/shared/names.js";
import { validate } from "../protocol/codec.js";
import type { EffectContext } from "../runtime/runtime.js";
import { type FileMover, type TransferEvents, TransferRequestSchema } from "../transfer/transfer-agent.js";
import { sendOnce, type WorkloadContext } from "./context.js";

const cancelSchema = z.object({ subscriptionId: z.string().min(1) });

export class TransferService {
  private readonly completions = new Map<string, () => void>();

  constructor(private readonly ctx: WorkloadContext) {}

  /** The agent's callbacks, turned into durable events for the subscription actor. */
  readonly events: TransferEvents = {
    onFileDone: (subscriptionId, lfn) => {
      const atMs = this.ctx.runtime.clock.nowMs();
      void this.report(subscriptionId, { type: "file.done", lfn, atMs }, `${subscriptionId}:${lfn}:done`);
    },
    onFileFailed: (subscriptionId, lfn, error, attempt, willRetry) => {
      if (willRetry) return;
      const atMs = this.ctx.runtime.clock.nowMs();
      const event = {
        type: "file.failed",
        lfn,
        reason: `${error.message} (after ${attempt} attempts)`,
        atMs,
      };
      void this.report(subscriptionId, event, `${subscriptionId}:${lfn}:failed:${attempt}`);
    },
    onComplete: (subscriptionId) => {
      this.completions.get(subscriptionId)?.();
      this.completions.delete(subscriptionId);
    },
  };

  private agent: FileMover | null = null;

  attach(agent: FileMover): void {
    this.agent = agent;
  }

  private async report(subscriptionId: string, event: object, eventId: string): Promise<void> {
    try {
      await sendOnce(this.ctx, refs.subscription(subscriptionId), event, eventId);
    } catch (err) {
      // The subscription refused it (cancelled, already failed): nothing more to tell it.
      this.ctx.log.warn({ subscriptionId, err: (err as Error).message }, "transfer report refused");
    }
  }

  readonly start = (data: unknown, _effect: EffectContext): Promise<void> => {
    const request = validate(TransferRequestSchema, data, "transfer.start");
    if (!this.agent) throw new Error("no transfer agent attached");
    return new Promise<void>((resolve) => {
      const previous = this.completions.get(request.subscriptionId);
      this.completions.set(request.subscriptionId, () => {
        previous?.();
        resolve();
      });
      // False: already being served (a redelivered effect); the completion above still resolves both.
      this.agent!.submit(request);
    });
  };

  readonly cancel = (data: unknown): void => {
    const { subscriptionId } = validate(cancelSchema, data, "transfer.cancel");
    this.agent?.cancel(subscriptionId);
    this.completions.get(subscriptionId)?.();
    this.completions.delete(subscriptionId);
  };
}
