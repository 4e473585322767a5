/**
 * The server node's log for `panda up`: JSON lines in a file, so the terminal
 * keeps to progress lines; errors are echoed to stderr as well, since those
 * are what a person must see.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../runtime/logger.js";
import type { LogLevel } from "../server/json-log.js";

const RANK: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

export class FileLogger implements Logger {
  private readonly stream: WriteStream;

  constructor(
    readonly path: string,
    private readonly level: LogLevel = "info",
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.stream = createWriteStream(path, { flags: "a" });
  }

  debug(fields: Record<string, unknown>, message: string): void {
    this.write("debug", fields, message);
  }

  info(fields: Record<string, unknown>, message: string): void {
    this.write("info", fields, message);
  }

  warn(fields: Record<string, unknown>, message: string): void {
    this.write("warn", fields, message);
  }

  error(fields: Record<string, unknown>, message: string): void {
    if (!this.write("error", fields, message)) return;
    process.stderr.write(`panda up: ${message} ${JSON.stringify(fields)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }

  /** False when the level is below the threshold and nothing was written. */
  private write(level: LogLevel, fields: Record<string, unknown>, message: string): boolean {
    if (RANK[level] < RANK[this.level]) return false;
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
    return true;
  }
}
