// redis-server for the tests: the same starter as `panda up --redis-cluster` (src/cli), plus the tests' loud skip.
export {
  answersPing,
  pollUntil,
  type RedisServerProcess,
  redisBinariesAvailable,
  startRedisServer,
  withProbe,
} from "../../src/cli/redis-server-process.js";

/**
 * Says loudly that a Redis-backed suite cannot run. On CI that is a failure
 * (a silent skip would pass a build that tested nothing), elsewhere a skip.
 */
export function reportUnavailable(what: string): void {
  if (process.env.CI === "true") throw new Error(`${what} is not available, and CI must not skip its tests`);
  const message = `${what} is not available, so its tests are SKIPPED`;
  const rule = "!".repeat(message.length + 8);
  console.warn(`\n${rule}\n!!! ${message} !!!\n${rule}\n`);
}
