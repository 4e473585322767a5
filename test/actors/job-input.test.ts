import { describe, expect, it } from "vitest";
import { completeJobInput } from "../../src/actors/job/context.js";
import { type JobInput, jobInputSchema } from "../../src/actors/job/schema.js";
import { inFile, jobResources } from "./fixtures.js";

const minimal: JobInput = {
  taskId: "t1",
  index: 0,
  user: "alice",
  type: "production",
  priority: 100,
  resources: jobResources,
  outputs: { dataset: "t1.out" },
};

const shared = {
  retry: { maxAttempts: 5, backoffMs: 1_000 },
  watchdogs: { sentTimeoutMs: 10_000 },
  payload: { command: ["run.sh", "{jobId}"] },
};

const inputs: [string, JobInput][] = [
  ["minimal", minimal],
  [
    "a task's fan-out with shared settings",
    { ...minimal, ...shared, inputs: [inFile("a"), inFile("b")], atMs: 5 },
  ],
  [
    "a retry with every field given",
    {
      ...minimal,
      type: "analysis",
      group: "phys",
      release: "r22",
      requestedSite: "CERN",
      attempt: 3,
      inputs: [inFile("a")],
      outputs: { dataset: "t1.out", destination: "BNL" },
      payload: { command: ["x"], env: { A: "1" }, outputs: ["out.root"] },
      retry: {
        maxAttempts: 2,
        retryErrorClasses: ["pilot"],
        backoffMs: 0,
        excludeFailingSite: false,
        maxSystemRetries: 1,
      },
      excludedSites: ["FZK"],
      watchdogs: {
        sentTimeoutMs: 1,
        heartbeatTimeoutMs: 2,
        assignedTimeoutMs: 3,
        holdingTimeoutMs: 4,
        rebrokerMs: 5,
        maxBrokerageTries: 6,
      },
      systemFailures: 2,
      startDelayMs: 30_000,
      atMs: 1_000,
    },
  ],
  ["nulls given", { ...minimal, group: null, release: null, payload: null, requestedSite: null }],
];

describe("completeJobInput", () => {
  it.each(inputs)("equals the job input schema's parse: %s", (_name, input) => {
    expect(completeJobInput(input)).toEqual(jobInputSchema.parse(input));
  });

  it("parses settings a task's jobs share once, and gives every job the same parsed object", () => {
    const first = completeJobInput({ ...minimal, ...shared, index: 0 });
    const second = completeJobInput({ ...minimal, ...shared, index: 1 });
    expect(second.retry).toBe(first.retry);
    expect(second.watchdogs).toBe(first.watchdogs);
    expect(second.payload).toBe(first.payload);
    expect(first.retry).toEqual(jobInputSchema.parse({ ...minimal, ...shared }).retry);
  });

  it("still refuses a shared setting that is invalid", () => {
    expect(() => completeJobInput({ ...minimal, watchdogs: { sentTimeoutMs: -1 } })).toThrow();
  });
});
