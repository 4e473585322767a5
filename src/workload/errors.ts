/** The workload services' failures: the codes the API maps to HTTP statuses, and their class. */
import { CodedError } from "../protocol/coded-error.js";

/** Failures of user requests to the workload services, with codes the API maps to HTTP statuses. */
export type WorkloadErrorCode =
  | "BAD_REQUEST"
  | "NOT_FOUND"
  | "DATASET_NOT_FOUND"
  | "DATASET_EMPTY"
  | "DATASET_FROZEN"
  | "CONFLICT"
  | "FORBIDDEN";

export class WorkloadError extends CodedError<WorkloadErrorCode> {
  override readonly name = "WorkloadError";
}
