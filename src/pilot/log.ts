/** One line of the pilot's log: a JSON object on stderr, so a batch system's log collector can parse it. */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

const REDACTED = "[redacted]";

/**
 * Writes `{t, level, msg, ...fields}` lines. Secrets (the bearer token, the
 * resume token) are cut out of every line before it is written, whatever
 * field or error message they hide in.
 */
export class PilotLog {
  private readonly secrets = new Set<string>();

  constructor(private readonly write: (line: string) => void = (line) => process.stderr.write(line)) {}

  /** Never write this string again, in whatever field it turns up. */
  addSecret(secret: string): void {
    if (secret.length === 0) return;
    this.secrets.add(secret);
    // Inside a JSON line a quote or backslash in the secret appears escaped.
    this.secrets.add(JSON.stringify(secret).slice(1, -1));
  }

  debug(msg: string, fields: LogFields = {}): void {
    this.emit("debug", msg, fields);
  }

  info(msg: string, fields: LogFields = {}): void {
    this.emit("info", msg, fields);
  }

  warn(msg: string, fields: LogFields = {}): void {
    this.emit("warn", msg, fields);
  }

  error(msg: string, fields: LogFields = {}): void {
    this.emit("error", msg, fields);
  }

  private emit(level: LogLevel, msg: string, fields: LogFields): void {
    let line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }, jsonSafe);
    for (const secret of this.secrets) line = line.replaceAll(secret, REDACTED);
    this.write(`${line}\n`);
  }
}

/** Errors become their message (JSON.stringify would write `{}`). */
function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  return value;
}

/** An error's message, for log fields and reports. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
