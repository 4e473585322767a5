import { describe, expect, it } from "vitest";
import { factoryGlobalProjections } from "../../src/actors/factory/global-projections.js";
import { pilotJobGlobalProjections } from "../../src/actors/pilot-job/global-projections.js";
import type { MachineState } from "../../src/runtime/compiled-machine.js";

const pilotJob = (value: string): MachineState => ({
  value,
  context: { id: "pj-1", factory: "f1", queue: "q", site: "S" },
  status: value === "done" ? "done" : "active",
});

describe("the factory kinds' global projections", () => {
  it("list a pilot job in its factory's lists when made, and take it off the live list when it ends, once", () => {
    const change = (before: MachineState | null, after: MachineState) =>
      pilotJobGlobalProjections({ id: "pj-1", before, after, event: { type: "x" }, atMs: 5_000 });
    expect(change(null, pilotJob("submitted"))).toEqual([
      { effect: "index.put", data: { index: "pilot-jobs:f1", member: "pj-1", score: 5_000 } },
      { effect: "index.put", data: { index: "pilot-jobs-live:f1", member: "pj-1", score: 5_000 } },
    ]);
    expect(change(pilotJob("submitted"), pilotJob("running"))).toEqual([]);
    expect(change(pilotJob("running"), pilotJob("done"))).toEqual([
      { effect: "index.remove", data: { index: "pilot-jobs-live:f1", member: "pj-1" } },
    ]);
  });

  it("list a factory when it is made, and only then", () => {
    const after: MachineState = { value: "active", context: { name: "f1" }, status: "active" };
    const made = factoryGlobalProjections({
      id: "f1",
      before: null,
      after,
      event: { type: "create" },
      atMs: 7,
    });
    expect(made).toEqual([{ effect: "index.put", data: { index: "factories", member: "f1", score: 7 } }]);
    expect(
      factoryGlobalProjections({ id: "f1", before: after, after, event: { type: "report" }, atMs: 8 }),
    ).toEqual([]);
  });
});
