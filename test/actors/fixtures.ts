import type { TaskInput } from "../../src/actors/task/schema.js";

/** Inputs and settings shared by the job, task and flow tests. */

export const inFile = (lfn: string) => ({ lfn, sizeBytes: 100, checksum: `ad:${lfn}`, dataset: "mc.in" });

export const jobResources = { cores: 1, memoryMb: 2_000, diskMb: 5_000, walltimeSec: 3_600 };

export const taskInput: TaskInput = {
  taskId: "t-1",
  user: "alice",
  type: "production",
  priority: 100,
  resources: jobResources,
  outputs: { dataset: "mc.out" },
  retry: { maxAttempts: 2 },
  jobs: [{ inputs: [inFile("a"), inFile("b")] }, { inputs: [inFile("c")] }, { inputs: [inFile("d")] }],
  atMs: 1_000,
};
