/** `panda`'s exit codes: scripts branch on them, so each means one kind of failure. */
export const EXIT = {
  ok: 0,
  /** The server or the operation failed (unreachable, conflict, internal error). */
  failed: 1,
  /** The command line or the configuration is wrong; the message names what to fix. */
  usage: 2,
  /** The server refused the credential (401) or the principal may not do this (403). */
  auth: 3,
  notFound: 4,
  /** `panda wait`: the task ended, but not every job finished. */
  incomplete: 5,
  /** `panda wait`: the time limit passed before the task ended. */
  timeout: 6,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure `panda` reports in one line and exits with; the message says what was wrong and how to fix it. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(EXIT.usage, message);
}
