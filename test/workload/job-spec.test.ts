import { describe, expect, it } from "vitest";
import { jobSpecSchema } from "../../src/protocol/messages.js";
import { DirectoryStorageElement } from "../../src/transfer/directory-storage-element.js";
import type { StorageElement } from "../../src/transfer/storage-element.js";
import { XrootdStorageElement } from "../../src/transfer/xrootd-storage-element.js";
import { expand, type JobSpecSource, jobSpec } from "../../src/workload/job-spec.js";

function job(overrides: Partial<JobSpecSource> = {}): JobSpecSource {
  return {
    jobId: "task-1.7.2",
    attempt: 2,
    taskId: "task-1",
    index: 7,
    type: "production",
    site: "CERN-PROD",
    payload: {
      command: ["run", "--out", "{jobId}.root"],
      env: { A: "1" },
      outputs: ["{taskId}-{index}.out"],
    },
    resources: { cores: 1, memoryMb: 2000, diskMb: 1000, walltimeSec: 3600 },
    inputs: [],
    ...overrides,
  };
}

/** The spec a pilot is pushed, built straight from a job's context: no grid, no socket. */
describe("jobSpec", () => {
  it("expands every placeholder, each time it occurs", () => {
    expect(expand("{jobId}/{taskId}/{attempt}/{index}/{jobId}", job())).toBe(
      "task-1.7.2/task-1/2/7/task-1.7.2",
    );
    expect(expand("no placeholders {other}", job())).toBe("no placeholders {other}");
  });

  it("carries the job and its payload, with command and output names expanded", () => {
    const spec = jobSpec(job(), "http://node:8080");
    expect(spec).toEqual({
      jobId: "task-1.7.2",
      attempt: 2,
      taskId: "task-1",
      type: "production",
      command: ["run", "--out", "task-1.7.2.root"],
      env: { A: "1" },
      walltimeSec: 3600,
      inputs: [],
      uploadUrl: "http://node:8080/storage/CERN-PROD",
      outputs: ["task-1-7.out"],
    });
    expect(jobSpecSchema.parse(spec)).toEqual(spec);
  });

  it("gives each input the URL of its site's storage, names encoded", () => {
    const spec = jobSpec(
      job({
        site: "site a",
        inputs: [{ lfn: "data/file 1.root", sizeBytes: 10, checksum: "ad:00000001", dataset: "ds1" }],
      }),
      "https://grid.example/",
    );
    expect(spec.inputs).toEqual([
      {
        lfn: "data/file 1.root",
        sizeBytes: 10,
        checksum: "ad:00000001",
        url: "https://grid.example/storage/site%20a/data/file%201.root",
      },
    ]);
    // A trailing slash on the base URL is not doubled.
    expect(spec.uploadUrl).toBe("https://grid.example/storage/site%20a");
  });

  it("runs `true` for a job without a payload (work that is only simulated)", () => {
    const spec = jobSpec(job({ payload: null }), "http://sim.invalid");
    expect(spec.command).toEqual(["true"]);
    expect(spec.env).toEqual({});
    expect(spec.outputs).toEqual([]);
  });

  it("leaves the site empty for a job that has none", () => {
    expect(jobSpec(job({ site: null }), "http://node").uploadUrl).toBe("http://node/storage/");
  });

  it("names root:// URLs at the site's XRootD storage element, and the node's routes for a local one", () => {
    const storage = new Map<string, StorageElement>([
      [
        "CERN-PROD",
        new XrootdStorageElement({ endpoint: "root://se.cern.example:1094/", basePath: "/atlas/panda" }),
      ],
      ["LOCAL", new DirectoryStorageElement("/nonexistent/local")],
    ]);
    const inputs = [{ lfn: "ds/f1.root", sizeBytes: 10, checksum: "adler32:00000001", dataset: "ds1" }];
    const direct = jobSpec(job({ inputs }), "http://node:8080", storage);
    expect(direct.inputs[0]!.url).toBe("root://se.cern.example:1094//atlas/panda/ds/f1.root");
    expect(direct.uploadUrl).toBe("root://se.cern.example:1094//atlas/panda");
    const throughNode = jobSpec(job({ site: "LOCAL", inputs }), "http://node:8080", storage);
    expect(throughNode.inputs[0]!.url).toBe("http://node:8080/storage/LOCAL/ds/f1.root");
    expect(throughNode.uploadUrl).toBe("http://node:8080/storage/LOCAL");
  });

  it("names a sandbox at its root:// URL when sandboxes are kept on XRootD, else at the node's sandbox route", () => {
    const sandbox = {
      sha256: "c0".repeat(32),
      sizeBytes: 1234,
      maxUnpackedBytes: 1_000_000,
      maxEntries: 100,
    };
    const withSandbox = job({ payload: { ...job().payload!, sandbox } });
    const onXrootd = Object.assign(new Map<string, StorageElement>(), {
      sandboxElement: new XrootdStorageElement({ endpoint: "root://sb.example:1094/", basePath: "/sb" }),
    });
    const specs = [
      jobSpec(withSandbox, "http://node", onXrootd),
      jobSpec(withSandbox, "http://node:8080", new Map()),
    ];
    // Size, hash and limits go with the URL either way: the pilot checks them whichever way it fetched.
    expect(specs[0]!.sandbox).toEqual({ ...sandbox, url: expect.stringMatching(/^root:/) });
    expect(specs.map((s) => s.sandbox?.url)).toEqual([
      `root://sb.example:1094//sb/sandboxes/c0/${sandbox.sha256}.tar.gz`,
      `http://node:8080/sandboxes/${sandbox.sha256}`,
    ]);
    const local = Object.assign(new Map<string, StorageElement>(), {
      sandboxElement: new DirectoryStorageElement("/nonexistent/sandboxes"),
    });
    expect(jobSpec(withSandbox, "http://node", local).sandbox?.url).toBe(
      `http://node/sandboxes/${sandbox.sha256}`,
    );
  });
});
