/** What the client verbs share on the command line: the connection flags, `--json`, and argument parsers that fail with the flag's name. */
import { type Command, InvalidArgumentError } from "commander";
import { nameSchema } from "../actors/shared/schemas.js";
import { PandaClient } from "./client.js";
import { ENV, resolveConnection } from "./config.js";
import { usageError } from "./errors.js";

/** The flags every client command shares. */
export interface ConnectionOptions {
  server?: string;
  token?: string;
}

export function addConnectionOptions(command: Command): Command {
  return command
    .option(
      "--server <url>",
      `the panda server (default: $${ENV.server}, else .panda/local.json from \`panda up\`)`,
    )
    .option(
      "--token <token>",
      `a user token (default: $${ENV.token}, which keeps it out of \`ps\`; else .panda/local.json)`,
    );
}

export function addJsonOption(command: Command): Command {
  return command.option("--json", "print the server's answer as JSON");
}

export function clientFor(options: ConnectionOptions): PandaClient {
  return new PandaClient(resolveConnection({ server: options.server, token: options.token }));
}

/** A commander argument parser for integers in [min, max]; the error names the range. */
export function integerArg(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const number = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
      const range =
        max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected ${range}`);
    }
    return number;
  };
}

/** For repeatable options (`--output-file a --output-file b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--at`: ISO 8601 (`2025-01-31T12:00:00Z`) or milliseconds since the epoch. */
export function epochMsArg(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const epochMs = Date.parse(value);
  if (Number.isNaN(epochMs)) {
    throw new InvalidArgumentError("expected an ISO 8601 time (2025-01-31T12:00:00Z) or epoch milliseconds");
  }
  return epochMs;
}

/** A name the server would take (a site, a job id), or a usage error saying which argument is wrong. */
export function checkedName(what: string, value: string): string {
  const parsed = nameSchema.safeParse(value);
  if (!parsed.success) throw usageError(`${what}: ${parsed.error.issues[0]?.message ?? "not a valid name"}`);
  return parsed.data;
}
