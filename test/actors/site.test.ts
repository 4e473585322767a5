import { describe, expect, it } from "vitest";
import { initialTransition, type SnapshotFrom } from "xstate";
import { DEFAULT_REASSIGN_AFTER_MS } from "../../src/actors/job/schema.js";
import type { ErrorClass } from "../../src/actors/shared/schemas.js";
import {
  type SiteContext,
  type SiteEvent,
  type SiteInput,
  siteKind,
  siteMachine,
} from "../../src/actors/site/index.js";
import { migrateSite } from "../../src/actors/site/migrate.js";
import { failureSummary, pilotRequestsInWindow } from "../../src/actors/site/stats.js";
import { accept, acceptAll, driveThroughRuntime, effectsOf } from "./helpers.js";

const resources = {
  slots: 100,
  memoryPerSlotMb: 2_000,
  diskMb: 10_000,
  walltimeSec: { min: 0, max: 86_400 },
};
const thresholds = { blackHoleMinJobs: 10, blackHoleFailureFraction: 0.7, recoverySuccesses: 3 };

function create(input: Partial<SiteInput> = {}) {
  const [snapshot, actions] = initialTransition(siteMachine, {
    name: "BNL",
    resources,
    thresholds,
    atMs: 1_000,
    ...input,
  });
  expect(effectsOf(actions)).toEqual([]);
  return snapshot;
}

let jobSeq = 0;
function ended(
  to: "finished" | "failed" | "cancelled" | "closed",
  atMs: number,
  errorClass: ErrorClass = "lostHeartbeat",
): SiteEvent {
  jobSeq++;
  return {
    type: "job.state",
    jobId: `t-1-${jobSeq}.1`,
    from: "running",
    to,
    jobType: "production",
    ...(to === "failed" ? { errorClass } : {}),
    atMs,
  };
}

function endJobs(
  snapshot: SnapshotFrom<typeof siteMachine>,
  outcomes: ("finished" | "failed")[],
  fromMs: number,
) {
  return acceptAll(
    siteMachine,
    snapshot,
    outcomes.map((o, i) => ended(o, fromMs + i)),
  );
}

const times = (n: number, outcome: "finished" | "failed") => new Array<typeof outcome>(n).fill(outcome);

describe("site", () => {
  it("starts in the status it was created with", () => {
    expect(create().value).toBe("online");
    const test = create({ status: "test" });
    expect(test.value).toBe("test");
    expect(test.context.status).toBe("test");
  });

  it("counts final outcomes from job.state reports and leaves live states to the jobs' counters", () => {
    const [next, effects] = acceptAll(siteMachine, create(), [
      { type: "job.state", jobId: "j1", from: "defined", to: "assigned", jobType: "production" },
      { type: "job.state", jobId: "j2", from: "activated", to: "sent", jobType: "analysis" },
      {
        type: "job.state",
        jobId: "j2",
        from: "sent",
        to: "cancelled",
        jobType: "analysis",
        errorClass: "killed",
      },
    ]);
    expect(effects).toEqual([]);
    expect(next.context).not.toHaveProperty("jobs");
    expect(next.context.totals).toEqual({ finished: 0, failed: 0, cancelled: 1, closed: 0 });
    expect(next.context.outcomes).toEqual([]);
  });

  it("counts outcomes in buckets of a twelfth of the failure window and forgets those that left it", () => {
    const site = create({ thresholds: { ...thresholds, failureWindowMs: 12_000 } });
    const [next] = endJobs(site, ["finished", "finished", "failed", "finished", "finished"], 1_000);
    expect(next.context.outcomes).toEqual([
      { startMs: 1_000, finished: 4, failed: 1, closed: 0, errorClasses: { lostHeartbeat: 1 } },
    ]);
    // However many jobs end, the site keeps at most one bucket per twelfth of the window (plus the partial one).
    const busy = Array.from({ length: 300 }, (_, i) =>
      ended(i % 3 === 0 ? "failed" : "finished", 1_000 + i * 100),
    );
    const [crowded] = acceptAll(siteMachine, next, busy);
    expect(crowded.context.outcomes.length).toBeLessThanOrEqual(14);
    expect(failureSummary(crowded.context.outcomes, 30_900, 12_000)).toMatchObject({ jobs: 130, failed: 43 });
    const [later] = accept(siteMachine, crowded, ended("failed", 60_000));
    expect(later.context.outcomes).toEqual([
      { startMs: 60_000, finished: 0, failed: 1, closed: 0, errorClasses: { lostHeartbeat: 1 } },
    ]);
  });

  it("turns itself brokeroff with an incident when most recent jobs fail", () => {
    const [before] = endJobs(create(), [...times(3, "finished"), ...times(6, "failed")], 2_000);
    expect(before.value).toBe("online");
    const [after] = accept(siteMachine, before, ended("failed", 3_000));
    expect(after.value).toBe("brokeroff");
    expect(after.context.status).toBe("brokeroff");
    expect(after.context.statusInfo).toMatchObject({ by: "auto", sinceMs: 3_000 });
    expect(after.context.incidents).toEqual([
      {
        openedAtMs: 3_000,
        closedAtMs: null,
        closedBy: null,
        jobs: 10,
        failed: 7,
        failureFraction: 0.7,
        userFailed: 0,
        errorClasses: { lostHeartbeat: 7 },
      },
    ]);
  });

  it("blames a site for its own failures only: 25 payload errors leave it online, 25 stage-in failures do not", () => {
    const failing = (errorClass: ErrorClass) =>
      Array.from({ length: 25 }, (_, i) => ended("failed", 2_000 + i, errorClass));
    const [usersFault] = acceptAll(siteMachine, create(), failing("payload"));
    expect(usersFault.value).toBe("online");
    expect(failureSummary(usersFault.context.outcomes, 3_000, 3_600_000)).toMatchObject({
      jobs: 0,
      failed: 0,
      userFailed: 25,
      errorClasses: { payload: 25 },
    });
    expect(usersFault.context.totals.failed).toBe(25);
    const [sitesFault] = acceptAll(siteMachine, create(), failing("stagein"));
    expect(sitesFault.value).toBe("brokeroff");
    expect(sitesFault.context.incidents.at(-1)).toMatchObject({ failed: 10, userFailed: 0 });
    // Nor does a user's failure break a brokeroff site's run of successes towards recovery.
    const [recovering] = endJobs(sitesFault, ["finished", "finished"], 5_000);
    const [stillCounting] = accept(siteMachine, recovering, ended("failed", 5_100, "payload"));
    expect(stillCounting.context.consecutiveSuccesses).toBe(2);
    const [back] = accept(siteMachine, stillCounting, ended("finished", 5_200));
    expect(back.value).toBe("online");
  });

  it("does not judge a site on too few jobs, nor on kills and closes", () => {
    const [few] = endJobs(create(), times(9, "failed"), 2_000);
    expect(few.value).toBe("online");
    const [withNoise] = acceptAll(
      siteMachine,
      few,
      [1, 2, 3, 4, 5].flatMap((i) => [ended("cancelled", 3_000 + i), ended("closed", 3_000 + i)]),
    );
    expect(withNoise.value).toBe("online");
    expect(failureSummary(withNoise.context.outcomes, 4_000, 3_600_000)).toMatchObject({
      jobs: 9,
      failed: 9,
    });
  });

  it("recovers after consecutive successes, closing the incident and starting a fresh window", () => {
    const [off] = endJobs(create(), times(10, "failed"), 2_000);
    expect(off.value).toBe("brokeroff");
    const [stillOff] = endJobs(off, ["finished", "finished", "failed", "finished", "finished"], 5_000);
    expect(stillOff.value).toBe("brokeroff");
    expect(stillOff.context.consecutiveSuccesses).toBe(2);
    const [back] = accept(siteMachine, stillOff, ended("finished", 6_000));
    expect(back.value).toBe("online");
    expect(back.context.incidents[0]).toMatchObject({ closedAtMs: 6_000, closedBy: "recovery" });
    expect(back.context.outcomes).toEqual([]);
    const [oneMore] = accept(siteMachine, back, ended("failed", 6_500));
    expect(oneMore.value).toBe("online");
  });

  it("obeys an operator: any other status, recorded with who and why, closing an open incident", () => {
    const [off] = endJobs(create(), times(10, "failed"), 2_000);
    const setOnline = {
      type: "setStatus",
      status: "online",
      by: "shifter",
      reason: "disk fixed",
      atMs: 7_000,
    } as const;
    const [online] = accept(siteMachine, off, setOnline);
    expect(online.value).toBe("online");
    expect(online.context.statusInfo).toEqual({ sinceMs: 7_000, by: "shifter", reason: "disk fixed" });
    expect(online.context.incidents[0]).toMatchObject({ closedAtMs: 7_000, closedBy: "shifter" });
    expect(online.can(setOnline)).toBe(false);
    const [offline] = accept(siteMachine, online, { ...setOnline, status: "offline", reason: "downtime" });
    expect(offline.value).toBe("offline");
    const [test] = accept(siteMachine, offline, { ...setOnline, status: "test", reason: "validation" });
    expect(test.value).toBe("test");
  });

  it("asks for its queued jobs to be reassigned when it goes offline", () => {
    const setOffline = {
      type: "setStatus",
      status: "offline",
      by: "op",
      reason: "downtime",
      atMs: 2_000,
    } as const;
    const [, effects] = accept(siteMachine, create(), setOffline);
    expect(effects).toEqual([{ emit: "site.offline", data: { site: "BNL" } }]);
  });

  it("remembers the last drain of its pilots, in any status", () => {
    const drain: SiteEvent = { type: "drain", by: "op", reason: "kernel update", atMs: 3_000 };
    const [drained, effects] = accept(siteMachine, create({ status: "brokeroff" }), drain);
    expect(drained.value).toBe("brokeroff");
    expect(drained.context.drain).toEqual({ atMs: 3_000, by: "op", reason: "kernel update" });
    expect(effects).toEqual([]);
  });

  it("counts a reassigned job among its closed jobs but does not judge itself on it", () => {
    const closed = ended("closed", 2_000) as Extract<SiteEvent, { type: "job.state" }>;
    const reassigned: SiteEvent = { ...closed, errorClass: "system", reassigned: true };
    const [site] = accept(siteMachine, create(), reassigned);
    expect(site.context.totals.closed).toBe(1);
    expect(site.context.outcomes).toEqual([]);
  });

  it("does not lift an operator's brokeroff by itself", () => {
    const [off] = accept(siteMachine, create(), {
      type: "setStatus",
      status: "brokeroff",
      by: "shifter",
      reason: "SE unstable",
    });
    const [still] = endJobs(off, times(5, "finished"), 2_000);
    expect(still.value).toBe("brokeroff");
  });

  it("never fails a site that is not online on its own", () => {
    const [test] = endJobs(create({ status: "test" }), times(20, "failed"), 2_000);
    expect(test.value).toBe("test");
  });

  it("tracks pilot requests in a bucketed window", () => {
    const site = create({ thresholds: { ...thresholds, pilotWindowMs: 10_000 } });
    const [next] = acceptAll(siteMachine, site, [
      { type: "pilot.seen", atMs: 1_000 },
      { type: "pilot.seen", pilotId: "p1", atMs: 1_500 },
      { type: "pilot.seen", atMs: 5_000 },
      { type: "pilot.seen", atMs: 14_000 },
    ]);
    expect(next.context.pilots.lastSeenAtMs).toBe(14_000);
    expect(next.context.pilots.requests).toEqual([
      { startMs: 5_000, count: 1 },
      { startMs: 14_000, count: 1 },
    ]);
    expect(pilotRequestsInWindow(next.context, 14_000)).toBe(2);
    expect(pilotRequestsInWindow(next.context, 30_000)).toBe(0);
  });

  it("counts a report that stands for several pilot requests as that many", () => {
    const site = create({ thresholds: { ...thresholds, pilotWindowMs: 10_000 } });
    const [next] = acceptAll(siteMachine, site, [
      { type: "pilot.seen", pilotId: "p1", atMs: 1_000 },
      { type: "pilot.seen", pilotId: "p9", requests: 8, atMs: 1_400 },
      { type: "pilot.seen", requests: 3, atMs: 2_000 },
    ]);
    expect(next.context.pilots.requests).toEqual([
      { startMs: 1_000, count: 9 },
      { startMs: 2_000, count: 3 },
    ]);
    expect(pilotRequestsInWindow(next.context, 2_000)).toBe(12);
  });

  it("runs through the runtime's step() and restores from its stored bytes", () => {
    const live = driveThroughRuntime(siteKind, "site/BNL", [
      {
        type: "create",
        input: { name: "BNL", resources, thresholds: { ...thresholds, blackHoleMinJobs: 2 } },
      },
      ended("failed", 2_000),
      ended("failed", 2_001),
      { type: "pilot.seen", atMs: 2_002 },
      { type: "setStatus", status: "online", by: "shifter", reason: "fixed" },
    ]);
    expect(live.state.value).toBe("online");
    expect(live.state.context.incidents).toHaveLength(1);
  });
});

describe("site snapshots of machine version 2", () => {
  it("take the default limit on a job waiting at the site before it is reassigned, and were never drained", () => {
    const { reassignAfterMs: _limit, ...v2Thresholds } = create().context.thresholds;
    const { drain: _, ...v2Context } = create().context;
    const context = { ...v2Context, thresholds: v2Thresholds };
    const lifted = migrateSite(2, { value: "online", context, status: "active" });
    expect(lifted.context).toEqual(create().context);
  });
});

describe("site snapshots of machine version 1", () => {
  it("lift their outcome list into buckets and drop the list's bound", () => {
    const context = {
      ...create().context,
      thresholds: { ...create().context.thresholds, maxRecentOutcomes: 500 },
      recentOutcomes: [
        { atMs: 1_000, outcome: "finished", errorClass: null },
        { atMs: 2_000, outcome: "failed", errorClass: "stagein" },
        { atMs: 400_000, outcome: "closed", errorClass: null },
      ],
    } as Record<string, unknown>;
    delete context.outcomes;
    const lifted = migrateSite(1, { value: "online", context, status: "active" });
    const liftedContext = lifted.context as SiteContext;
    expect(liftedContext).not.toHaveProperty("recentOutcomes");
    expect(liftedContext.thresholds).not.toHaveProperty("maxRecentOutcomes");
    expect(liftedContext.thresholds.reassignAfterMs).toBe(DEFAULT_REASSIGN_AFTER_MS);
    expect(liftedContext.outcomes).toEqual([
      { startMs: 0, finished: 1, failed: 1, closed: 0, errorClasses: { stagein: 1 } },
      { startMs: 300_000, finished: 0, failed: 0, closed: 1, errorClasses: {} },
    ]);
  });
});
