import { describe, expect, it } from "vitest";
import { jobIdOf, jobIdParts } from "../../src/actors/shared/names.js";

describe("job ids", () => {
  it("reads back the task, index and attempt a job id was made of, whatever the task id holds", () => {
    for (const [taskId, index, attempt] of [
      ["t-1", 0, 1],
      ["t-mxe0wrwh0592e9", 17, 3],
      ["user.task-2026.12", 9_999, 12],
      ["a--b..c-", 1, 1],
      ["7", 0, 100],
    ] as const)
      expect(jobIdParts(jobIdOf(taskId, index, attempt))).toEqual({ taskId, index, attempt });
  });

  it("says null for an id no task's job could have", () => {
    for (const id of [
      "",
      "t",
      "t-1",
      "t-.1",
      "t-1.",
      "-0.1",
      "t-01.1",
      "t-1.01",
      "t-1.x",
      "t-x.1",
      "t-1.2.3",
      "t-+1.1",
    ])
      expect(jobIdParts(id), id).toBeNull();
  });
});
