import { describe, expect, it } from "vitest";
import { renderActorView } from "../../src/cli/inspect.js";
import { renderJobs } from "../../src/cli/jobs.js";
import { renderTable } from "../../src/cli/output.js";
import { buildSubmission } from "../../src/cli/submit.js";

describe("buildSubmission", () => {
  it("turns flags and the argv after -- into the API's task submission", () => {
    expect(
      buildSubmission(
        {
          name: "n",
          type: "production",
          priority: 5,
          site: "SITE-A",
          input: "ds",
          filesPerJob: 2,
          output: "ds.out",
          outputFile: ["a-{jobId}", "b"],
          walltime: 60,
          memory: 1000,
          cores: 2,
        },
        ["sh", "-c", "echo hi"],
      ),
    ).toEqual({
      name: "n",
      type: "production",
      priority: 5,
      site: "SITE-A",
      resources: { walltimeSec: 60, memoryMb: 1000, cores: 2 },
      payload: { command: ["sh", "-c", "echo hi"], outputs: ["a-{jobId}", "b"] },
      input: { dataset: "ds", filesPerJob: 2 },
      outputDataset: "ds.out",
    });
    expect(buildSubmission({ jobs: 3 }, ["true"])).toEqual({
      resources: {},
      payload: { command: ["true"] },
      jobs: 3,
    });
    expect(buildSubmission({ jobs: 1, test: true }, ["true"])).toMatchObject({ test: true });
  });

  it("names the flag to fix", () => {
    expect(() => buildSubmission({}, [])).toThrow(/no payload command: give it after --/);
    expect(() => buildSubmission({ filesPerJob: 2 }, ["true"])).toThrow(/--files-per-job needs --input/);
    expect(() => buildSubmission({ site: "has space" }, ["true"])).toThrow(/^--site: id must not contain/);
    expect(() => buildSubmission({}, [""])).toThrow(/^the command after --: /);
  });
});

describe("human output", () => {
  it("pads table columns and shows missing values as -", () => {
    expect(
      renderTable(
        ["a", "long header"],
        [
          ["wide cell", null],
          [1, "x"],
        ],
      ),
    ).toBe(["A          LONG HEADER", "wide cell  -", "1          x"].join("\n"));
  });

  it("lists jobs with their errors", () => {
    const text = renderJobs([
      {
        jobId: "t-1-0.1",
        taskId: "t-1",
        attempt: 1,
        state: "failed",
        site: "S",
        type: "production",
        error: { class: "payload", message: "exit 1" },
      },
    ]);
    expect(text).toContain("t-1-0.1  failed  S     1        production  payload: exit 1");
    expect(renderJobs([])).toBe("no jobs");
  });

  it("shows an actor's history with ISO times, refusals marked", () => {
    const text = renderActorView({
      kind: "job",
      id: "t-1-0.1",
      version: 2,
      state: "running",
      status: "active",
      context: { a: 1 },
      history: [
        { v: 1, at: 0, event: { type: "create" }, from: null, to: "defined", cause: "submit" },
        {
          v: 1,
          at: 1000,
          event: { type: "kill" },
          from: "defined",
          to: "defined",
          cause: "api",
          refused: { code: "EVENT_NOT_ACCEPTED", message: "no" },
        },
      ],
    });
    expect(text).toContain("state: running (version 2, status active)");
    expect(text).toContain('    "a": 1');
    expect(text).toContain("1970-01-01T00:00:01.000Z  kill");
    expect(text).toContain("REFUSED EVENT_NOT_ACCEPTED: no");
    expect(text).toContain("2 entries, oldest first, 1 refused");
  });
});
