/** The job kind's global projections: an incident for each pilot report of a failed payload. */
import type { GlobalProjections } from "../../runtime/kinds.js";
import { incidentRaised } from "../shared/global-effects.js";
import type { JobContext, JobEvent } from "./schema.js";

/** A pilot's report of a failed payload, with its error and the log file it left. */
export const jobGlobalProjections: GlobalProjections = ({ id, after, event, atMs }) => {
  const ended = event as JobEvent;
  if (ended.type !== "pilot.ended" || (ended.exitCode === 0 && ended.errorClass === undefined)) return [];
  const job = after.context as JobContext;
  const errorClass = typeof ended.errorClass === "string" ? ended.errorClass : (job.error?.class ?? null);
  return [
    incidentRaised({
      atMs,
      source: "pilot",
      level: "error",
      message:
        typeof ended.errorMessage === "string" && ended.errorMessage !== ""
          ? ended.errorMessage
          : `payload exited with ${String(ended.exitCode)}`,
      site: job.site ?? null,
      jobId: job.jobId ?? id,
      errorClass,
      errorCode: ended.errorCode === undefined ? String(ended.exitCode) : String(ended.errorCode),
      reporter: String(ended.pilotId),
      details: { exitCode: ended.exitCode, log: ended.log ?? null, attempt: ended.attempt },
    }),
  ];
};
