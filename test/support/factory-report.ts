// A factory queue's report as `panda factory` sends it, for tests that play a factory.
import type { QueueReport } from "../../src/actors/factory/schema.js";

export function queueReport(overrides: Partial<QueueReport> = {}): QueueReport {
  return {
    name: "q1",
    site: "SITE-A",
    batchSystem: "slurm",
    partition: "debug",
    maxQueued: 5,
    maxRunning: 10,
    pilotsPerJob: 1,
    jobs: { submitting: 0, queued: 1, running: 2 },
    demand: { activated: 3, assigned: 0, idleThreads: 0 },
    submissionsPerMin: 4,
    throttle: { throttled: false, reason: null, sinceMs: null, backoffSec: 0, consecutiveFastFailures: 0 },
    lastError: null,
    ...overrides,
  };
}

/** The body of `PUT /api/v1/factories/:name/queues/:queue`. */
export function reportBody(queue: QueueReport): string {
  return JSON.stringify({ host: "login1", pid: 42, startedAtMs: 1, pollSeconds: 10, queue });
}
