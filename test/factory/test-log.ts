// The factory's log in a test: silent, or on stderr with PANDA_TEST_FACTORY_LOG=1 when a test needs looking into.
import type { Logger } from "../../src/runtime/logger.js";
import { silentLogger } from "../../src/runtime/logger.js";

const line = (level: string) => (fields: Record<string, unknown>, message: string) =>
  process.stderr.write(`${level} ${message} ${JSON.stringify(fields)}\n`);

export const factoryTestLog: Logger = process.env.PANDA_TEST_FACTORY_LOG
  ? { debug() {}, info: line("info"), warn: line("warn"), error: line("error") }
  : silentLogger;
