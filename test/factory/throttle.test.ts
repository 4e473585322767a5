import { describe, expect, it } from "vitest";
import { QueueThrottleState } from "../../src/factory/throttle.js";

const policy = { fastFailSec: 60, failuresToThrottle: 3, initialBackoffSec: 30, maxBackoffSec: 100 };
const failed = (endedAtMs: number, exitCode = 10) => ({
  state: "failed" as const,
  exitCode,
  startedAtMs: endedAtMs - 2_000,
  endedAtMs,
});

describe("the queue throttle", () => {
  it("throttles after fast failures in a row, probes once per doubling backoff, and lifts on a success", () => {
    const throttle = new QueueThrottleState(policy);
    throttle.recordEnd(failed(1_000));
    throttle.recordEnd(failed(2_000));
    expect(throttle.allowed(5, 2_000, 0)).toBe(5);
    throttle.recordEnd(failed(3_000));
    expect(throttle.view()).toMatchObject({
      throttled: true,
      backoffSec: 30,
      consecutiveFastFailures: 3,
      sinceMs: 3_000,
    });
    expect(throttle.view().reason).toBe("3 pilot jobs in a row failed within 60 s (last: exit 10)");
    expect(throttle.allowed(5, 32_999, 0)).toBe(0);
    expect(throttle.allowed(5, 33_000, 0)).toBe(1);
    // Not while the last probe is out.
    expect(throttle.allowed(5, 33_000, 1)).toBe(0);
    throttle.recordSubmission(33_000);
    throttle.recordEnd(failed(35_000));
    expect(throttle.backoffSec()).toBe(60);
    expect(throttle.allowed(1, 94_999, 0)).toBe(0);
    expect(throttle.allowed(1, 95_000, 0)).toBe(1);
    throttle.recordEnd(failed(96_000));
    expect(throttle.backoffSec()).toBe(100);
    throttle.recordEnd({ state: "done", exitCode: 0, startedAtMs: 97_000, endedAtMs: 98_000 });
    expect(throttle.view()).toMatchObject({
      throttled: false,
      reason: null,
      backoffSec: 0,
      consecutiveFastFailures: 0,
    });
    expect(throttle.allowed(5, 98_000, 3)).toBe(5);
  });

  it("counts neither cancelled nor lost jobs, and a long run that fails is not a fast failure", () => {
    const throttle = new QueueThrottleState(policy);
    throttle.recordEnd(failed(1_000));
    throttle.recordEnd({ state: "cancelled", exitCode: null, startedAtMs: null, endedAtMs: 2_000 });
    throttle.recordEnd({ state: "lost", exitCode: null, startedAtMs: null, endedAtMs: 2_500 });
    expect(throttle.view().consecutiveFastFailures).toBe(1);
    throttle.recordEnd({ state: "failed", exitCode: 1, startedAtMs: 0, endedAtMs: 61_000 });
    expect(throttle.view().consecutiveFastFailures).toBe(0);
  });

  it("carries a throttle over a restart, and counts submissions in the last minute", () => {
    const throttle = new QueueThrottleState(policy);
    throttle.restore(
      {
        throttled: true,
        reason: "3 pilot jobs in a row failed",
        sinceMs: 5,
        backoffSec: 60,
        consecutiveFastFailures: 4,
      },
      10_000,
    );
    expect(throttle.allowed(1, 69_999, 0)).toBe(0);
    expect(throttle.allowed(1, 70_000, 0)).toBe(1);
    throttle.recordSubmission(70_000);
    throttle.recordSubmission(100_000);
    expect(throttle.submissionsPerMin(120_000)).toBe(2);
    expect(throttle.submissionsPerMin(130_001)).toBe(1);
  });
});
