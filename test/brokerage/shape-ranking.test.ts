import { describe, expect, it } from "vitest";
import { inputLocality, JobNeedsSchema, resolveBrokerageConfig } from "../../src/brokerage/index.js";
import {
  ACCESS_FIELDS,
  NOT_READ_BY_VERDICTS,
  SHAPE_FIELDS,
  shapeKeyOf,
} from "../../src/brokerage/shape-ranking.js";
import { inputs, job } from "./fixtures.js";

describe("a job's shape", () => {
  it("sorts every field of JobNeeds into what site verdicts read and what they do not", () => {
    const sorted = [...SHAPE_FIELDS, ...ACCESS_FIELDS, ...NOT_READ_BY_VERDICTS].sort();
    expect(sorted).toEqual(Object.keys(JobNeedsSchema.shape).sort());
  });

  it("tells apart jobs that a site could weigh differently, and only those", () => {
    const config = resolveBrokerageConfig({});
    const key = (needs: ReturnType<typeof job>, restricted = false) =>
      shapeKeyOf(needs, inputLocality(needs, new Set()), config, restricted);
    const base = key(job());
    expect(key(job({ jobId: "other", taskId: "t9", priority: 1 }))).toBe(base);
    expect(key(job({ user: "bob" }))).toBe(base);
    expect(key(job({ user: "bob" }), true)).not.toBe(key(job(), true));
    expect(key(job({ memoryMb: 1501 }))).not.toBe(base);
    expect(key(job({ release: undefined }))).not.toBe(base);
    // Inputs count through the locality a site holding none of them scores: their number, not their names.
    expect(key(job({ inputs: inputs(2, 10, "a") }))).toBe(key(job({ inputs: inputs(2, 99, "b") })));
    expect(key(job({ inputs: inputs(2, 10) }))).not.toBe(key(job({ inputs: inputs(3, 10) })));
  });
});
