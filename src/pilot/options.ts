/**
 * The pilot's command line: flags and environment checked into `PilotOptions`,
 * and `runPilotCli`, which runs a pilot as the process it owns.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { messageOf, PilotLog } from "./log.js";
import { Pilot, TOKEN_ENV } from "./pilot.js";

/** What `panda pilot` was asked to do, after checking. */
export interface PilotOptions {
  /** The server's base URL as given (`http(s)://` or `ws(s)://`): the first of `serverUrls`. */
  serverUrl: string;
  /** Every server node the pilot may use, in order: after a dropped socket it dials the next. */
  serverUrls: string[];
  site: string;
  token: string;
  multitask: boolean;
  /** Absolute; each job gets `<workdir>/<jobId>.<attempt>/`. */
  workdir: string;
  /** The pilot ends after this many primary jobs (with `--stay`). */
  maxJobs: number | undefined;
  /** The pilot ends after this long without work while all threads are idle. */
  idleTimeoutSec: number | undefined;
  /** Take more primary jobs after the first instead of exiting. */
  stay: boolean;
  /** The batch slot's length; the pilot reports what is left of it. */
  walltimeSec: number;
  /** The pilot gives up (exit 4) when no session opened this long after it started. */
  callHomeTimeoutSec: number | undefined;
}

/** A bad command line; the message names the flag. */
export class PilotUsageError extends Error {
  override readonly name = "PilotUsageError";
}

export const PILOT_USAGE = `usage: panda pilot --server URL --site NAME --token T [options]

  --server URL[,URL]  the PanDA server (http, https, ws or wss); the pilot connects to URL/pilot,
                      and after a dropped socket to the next URL of the list (nodes of one grid)
  --site NAME         the site this pilot runs at
  --token T           the pilot credential (or set PANDA_PILOT_TOKEN)
  --multitask         run short jobs on a secondary thread while the primary job runs
  --workdir DIR       where job directories are made (default: the current directory)
  --max-jobs N        exit after N primary jobs (with --stay)
  --idle-timeout S    exit after S seconds without work while all threads are idle
  --stay              keep taking primary jobs after the first one ends
  --walltime S        the batch slot's length in seconds (default: 86400)
  --call-home-timeout S  exit 4 when no session with the server opened within S seconds
                      (a batch slot should not idle on an unreachable server; default: retry forever)
  --help              print this and exit
`;

const DEFAULT_WALLTIME_SEC = 24 * 60 * 60;

function serverUrlsOf(text: string): string[] {
  return text
    .split(",")
    .map((one) => one.trim())
    .filter(Boolean);
}

const required = (iss: { input: unknown }) => (iss.input === undefined ? "is required" : undefined);

const serverUrlSchema = z.string({ error: required }).refine(
  (text) =>
    text.split(",").every((one) => {
      try {
        return ["http:", "https:", "ws:", "wss:"].includes(new URL(one.trim()).protocol);
      } catch {
        return false;
      }
    }),
  "must be an http, https, ws or wss URL, or several separated by commas",
);

/** Keyed by flag name, so every issue's path is the flag to fix. */
const pilotFlagsSchema = z.object({
  server: serverUrlSchema,
  site: z.string({ error: required }).min(1).max(128),
  token: z.string({ error: required }).min(1),
  multitask: z.boolean().default(false),
  workdir: z.string().min(1).optional(),
  "max-jobs": z.coerce.number().int().positive().optional(),
  "idle-timeout": z.coerce.number().positive().optional(),
  stay: z.boolean().default(false),
  walltime: z.coerce.number().int().positive().default(DEFAULT_WALLTIME_SEC),
  "call-home-timeout": z.coerce.number().positive().optional(),
});

const FLAG_TYPES = {
  server: { type: "string" },
  site: { type: "string" },
  token: { type: "string" },
  multitask: { type: "boolean" },
  workdir: { type: "string" },
  "max-jobs": { type: "string" },
  "idle-timeout": { type: "string" },
  stay: { type: "boolean" },
  walltime: { type: "string" },
  "call-home-timeout": { type: "string" },
  help: { type: "boolean" },
} as const;

/**
 * Parses `panda pilot`'s arguments (without the verb). Throws PilotUsageError
 * naming the bad flag. The token may come from PANDA_PILOT_TOKEN instead, which
 * keeps it out of `ps` listings.
 */
export function parsePilotArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): PilotOptions | "help" {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: [...argv],
      options: FLAG_TYPES,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new PilotUsageError((err as Error).message);
  }
  if (values.help === true) return "help";
  delete values.help;
  const parsed = pilotFlagsSchema.safeParse({ token: env[TOKEN_ENV], ...values });
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `--${issue.path.join(".")}: ${issue.message}`);
    throw new PilotUsageError(detail.join("; "));
  }
  const flags = parsed.data;
  return {
    serverUrl: serverUrlsOf(flags.server)[0]!,
    serverUrls: serverUrlsOf(flags.server),
    site: flags.site,
    token: flags.token,
    multitask: flags.multitask,
    workdir: resolve(flags.workdir ?? process.cwd()),
    maxJobs: flags["max-jobs"],
    idleTimeoutSec: flags["idle-timeout"],
    stay: flags.stay,
    walltimeSec: flags.walltime,
    callHomeTimeoutSec: flags["call-home-timeout"],
  };
}

/**
 * `panda pilot`: runs a pilot until it is done and answers the process exit
 * code (0 done, 1 failed, 2 bad arguments, 3 unauthorized, 4 could not call
 * home within --call-home-timeout, 128+n stopped by
 * signal n). It owns the process while it runs: signals drain or stop the
 * pilot, and a crash kills the payloads before the process goes.
 */
export async function runPilotCli(argv: readonly string[]): Promise<number> {
  let options: PilotOptions | "help";
  try {
    options = parsePilotArgs(argv);
  } catch (err) {
    if (!(err instanceof PilotUsageError)) throw err;
    process.stderr.write(`panda pilot: ${err.message}\n\n${PILOT_USAGE}`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(PILOT_USAGE);
    return 0;
  }
  const log = new PilotLog();
  const pilot = new Pilot(options, log);
  const onSignal = (signal: NodeJS.Signals) => pilot.handleSignal(signal);
  const onCrash = (err: unknown) => {
    log.error("pilot crashed; killing payloads", { error: messageOf(err) });
    pilot.killPayloadsNow();
    process.exit(1);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  try {
    return await pilot.run();
  } catch (err) {
    log.error("pilot failed", { error: messageOf(err) });
    pilot.killPayloadsNow();
    return 1;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("uncaughtException", onCrash);
    process.off("unhandledRejection", onCrash);
  }
}
