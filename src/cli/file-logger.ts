import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../runtime/logger.js";

/**
 * The server node's log for `panda up`: JSON lines in a file, so the terminal
 * keeps to progress lines; errors are echoed to stderr as well, since those
 * are what a person must see.
 */
export class FileLogger implements Logger {
  private readonly stream: WriteStream;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.stream = createWriteStream(path, { flags: "a" });
  }

  debug(): void {}

  info(fields: Record<string, unknown>, message: string): void {
    this.write("info", fields, message);
  }

  warn(fields: Record<string, unknown>, message: string): void {
    this.write("warn", fields, message);
  }

  error(fields: Record<string, unknown>, message: string): void {
    this.write("error", fields, message);
    process.stderr.write(`panda up: ${message} ${JSON.stringify(fields)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }

  private write(level: string, fields: Record<string, unknown>, message: string): void {
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
  }
}
