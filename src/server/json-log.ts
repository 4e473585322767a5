/**
 * Structured JSON logs (pino: well kept, and its one-object-per-line format
 * is what log shippers read) at or above `level`, on stdout unless a file
 * descriptor or path is given.
 */
import { pino } from "pino";
import { z } from "zod";
import type { Logger } from "../runtime/logger.js";

export const logLevelSchema = z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);
export type LogLevel = z.infer<typeof logLevelSchema>;

export function createJsonLogger(
  level: LogLevel,
  destination: number | string = 1,
): Logger & { flush(): void } {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: destination, sync: false }));
}
