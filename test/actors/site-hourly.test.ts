import { describe, expect, it } from "vitest";
import { countHour, HOUR_MS, HOURS_KEPT, MAX_ERROR_KEYS_PER_HOUR } from "../../src/actors/site/hourly.js";
import type { HourBucket, JobStateEvent, SiteContext } from "../../src/actors/site/schema.js";
import { errorSummary } from "../../src/server/error-summary.js";
import { jobSummary } from "../../src/server/job-summary.js";
import type { SiteState } from "../../src/workload/sites.js";

const T0 = 100 * HOUR_MS;

function ended(
  jobId: string,
  to: JobStateEvent["to"],
  jobType: "production" | "analysis" = "production",
  error?: { errorClass: NonNullable<JobStateEvent["errorClass"]>; errorCode: string },
): JobStateEvent {
  return { type: "job.state", jobId, from: "running", to, jobType, ...error } as JobStateEvent;
}

function site(name: string, hours: HourBucket[], jobs: SiteState["jobs"] = {}): SiteState {
  return { name, status: "online", hours, jobs } as unknown as SiteContext & { jobs: SiteState["jobs"] };
}

describe("a site's hourly record of ended jobs", () => {
  it("counts per lane and per error class and code, transfers apart, the last job of each code kept", () => {
    let hours: HourBucket[] = [];
    hours = countHour(hours, ended("j1", "finished"), T0 + 10);
    hours = countHour(
      hours,
      ended("j2", "failed", "production", { errorClass: "stagein", errorCode: "1101" }),
      T0 + 20,
    );
    hours = countHour(
      hours,
      ended("j3", "failed", "analysis", { errorClass: "payload", errorCode: "7" }),
      T0 + 30,
    );
    hours = countHour(
      hours,
      ended("j4", "failed", "analysis", { errorClass: "payload", errorCode: "7" }),
      T0 + 40,
    );
    hours = countHour(hours, ended("j5", "cancelled", "analysis"), T0 + 50);
    hours = countHour(hours, ended("j6", "running"), T0 + 60);
    expect(hours).toHaveLength(1);
    expect(hours[0]!.production).toEqual({
      finished: 1,
      failed: 1,
      closed: 0,
      cancelled: 0,
      transferFailed: 1,
    });
    expect(hours[0]!.analysis).toEqual({
      finished: 0,
      failed: 2,
      closed: 0,
      cancelled: 1,
      transferFailed: 0,
    });
    expect(hours[0]!.errors).toEqual({
      "stagein:1101": { count: 1, lastJobId: "j2" },
      "payload:7": { count: 2, lastJobId: "j4" },
    });
  });

  it("keeps a day of hours and a bounded number of codes per hour", () => {
    let hours: HourBucket[] = [];
    for (let h = 0; h < 30; h++) hours = countHour(hours, ended(`j${h}`, "finished"), T0 + h * HOUR_MS);
    expect(hours).toHaveLength(HOURS_KEPT);
    expect(hours[0]!.startMs).toBe(T0 + 5 * HOUR_MS);
    let one: HourBucket[] = [];
    for (let code = 0; code < MAX_ERROR_KEYS_PER_HOUR + 5; code++)
      one = countHour(
        one,
        ended(`f${code}`, "failed", "production", { errorClass: "pilot", errorCode: `${code}` }),
        T0,
      );
    expect(Object.keys(one[0]!.errors)).toHaveLength(MAX_ERROR_KEYS_PER_HOUR + 1);
    expect(one[0]!.errors["pilot:*"]).toEqual({ count: 5, lastJobId: `f${MAX_ERROR_KEYS_PER_HOUR + 4}` });
  });

  it("answers the errors page over 1, 12 and 24 hours and the job summary per lane", () => {
    let hours: HourBucket[] = [];
    const fail = (id: string, atMs: number) =>
      countHour(hours, ended(id, "failed", "production", { errorClass: "payload", errorCode: "3" }), atMs);
    hours = fail("old", T0 - 20 * HOUR_MS);
    hours = fail("mid", T0 - 5 * HOUR_MS);
    hours = fail("new", T0 + 1);
    hours = countHour(hours, ended("ok", "finished", "analysis"), T0 + 2);
    const nowMs = T0 + 10;
    const { errors } = errorSummary([site("A", hours)], nowMs);
    expect(errors).toEqual([
      {
        site: "A",
        errorClass: "payload",
        errorCode: "3",
        counts: { h1: 1, h12: 2, h24: 3 },
        lastJobId: "new",
        lastHourMs: T0,
      },
    ]);
    const summary = jobSummary(
      [site("A", hours, { running: 5, activated: 2 })],
      new Map([["A", { running: 2 }]]),
      12,
      nowMs,
    );
    const row = summary.sites[0]!;
    expect(row.production.live).toEqual({ running: 3, activated: 2 });
    expect(row.analysis.live).toEqual({ running: 2 });
    expect(row.production.ended.failed).toBe(2);
    expect(row.production.failurePercent).toEqual({ total: 100, transfer: 0, other: 100 });
    expect(row.analysis.ended.finished).toBe(1);
    expect(summary.total.production.ended.failed).toBe(2);
  });
});
