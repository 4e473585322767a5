/** Failures of user requests to the workload services, with codes the API maps to HTTP statuses. */
export type WorkloadErrorCode =
  | "BAD_REQUEST"
  | "NOT_FOUND"
  | "DATASET_NOT_FOUND"
  | "DATASET_EMPTY"
  | "DATASET_FROZEN"
  | "CONFLICT"
  | "FORBIDDEN";

export class WorkloadError extends Error {
  override readonly name = "WorkloadError";
  constructor(
    readonly code: WorkloadErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
