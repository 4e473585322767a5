/** Every failure a store reports, with a code a caller can switch on. */
export type StoreErrorCode = "FENCED" | "LEASE_MISMATCH" | "BAD_ARGUMENT" | "UNAVAILABLE" | "SCRIPT";

export class StoreError extends Error {
  override readonly name: string = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A write presented a lease owner/epoch that is no longer current: this node lost the shard. */
export class FencedError extends StoreError {
  override readonly name = "FencedError";
  constructor(
    readonly shard: number,
    readonly owner: string,
    readonly epoch: number,
  ) {
    super("FENCED", `shard ${shard}: lease of ${owner} at epoch ${epoch} is no longer current`);
  }
}

/**
 * Lua scripts report failures as negative integers; this is the one place they
 * become typed errors, so a script and its caller cannot drift apart.
 */
export const SCRIPT_ERROR = {
  FENCED: -1,
  BAD_ARGUMENT: -2,
} as const;

export function scriptErrorFor(code: number, shard: number, owner: string, epoch: number): StoreError {
  if (code === SCRIPT_ERROR.FENCED) return new FencedError(shard, owner, epoch);
  if (code === SCRIPT_ERROR.BAD_ARGUMENT)
    return new StoreError("BAD_ARGUMENT", `shard ${shard}: bad script argument`);
  return new StoreError("SCRIPT", `shard ${shard}: script returned unknown code ${code}`);
}
