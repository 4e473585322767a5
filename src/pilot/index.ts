/** The pilot agent's public surface, for `panda pilot`, its bundle and the tests. */
export { reconnectDelayMs } from "./backoff.js";
export { PilotConnection, pilotSocketUrl } from "./connection.js";
export { JobRun, jobDirName, KILL_GRACE_MS } from "./job-run.js";
export { PilotLog } from "./log.js";
export { PILOT_USAGE, type PilotOptions, PilotUsageError, parsePilotArgs, runPilotCli } from "./options.js";
export { ReportOutbox } from "./outbox.js";
export { describeExit, Payload, type PayloadExit } from "./payload.js";
export { EXIT_UNAUTHORIZED, Pilot, TOKEN_ENV } from "./pilot.js";
