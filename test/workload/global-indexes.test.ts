import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { jobGlobalProjections } from "../../src/actors/job/global-projections.js";
import { indexPut } from "../../src/actors/shared/global-effects.js";
import type { MachineState } from "../../src/runtime/machine-runner.js";
import { MemoryQueueIndex } from "../../src/store/memory-queue-index.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { writeIndexEffect } from "../../src/workload/global-indexes.js";
import { Grid } from "../../src/workload/grid.js";
import { type Incident, IncidentLog } from "../../src/workload/incident-log.js";
import { emptyMade, indexDisagreement, planWave } from "../support/global-index-workload.js";

/** A memory index that says when it was written to, so a test awaits writes instead of sleeping. */
class WatchedIndex extends MemoryQueueIndex {
  private waiters: (() => void)[] = [];

  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  override async add(queue: string, member: string, score: number): Promise<void> {
    await super.add(queue, member, score);
    this.wake();
  }

  override async putRecord(queue: string, member: string, score: number, record: string): Promise<void> {
    await super.putRecord(queue, member, score, record);
    this.wake();
  }
}

describe("global indexes", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("are written from the effects the actors' commits carry, and agree with the actors", async () => {
    const index = new WatchedIndex();
    const storageRoot = mkdtempSync(join(tmpdir(), "panda-global-"));
    const grid = new Grid({
      store: new MemoryStore(),
      index,
      storageRoot,
      config: {},
      runtime: { shardCount: 8 },
    });
    await grid.start();
    cleanups.push(async () => {
      await grid.stop();
      rmSync(storageRoot, { recursive: true, force: true });
    });
    const made = emptyMade();
    for (let w = 0; w < 3; w++) {
      for (const { ref, event, eventId } of planWave(w, 1_000 + w, made)) {
        await grid.runtime.send(ref, event, { eventId });
      }
    }
    let disagreement = await indexDisagreement(grid.runtime, index, made);
    while (disagreement !== null) {
      const timedOut = new Promise<"timeout">((resolve) =>
        setTimeout(() => resolve("timeout"), 10_000).unref(),
      );
      if ((await Promise.race([index.changed(), timedOut])) === "timeout") break;
      disagreement = await indexDisagreement(grid.runtime, index, made);
    }
    expect(disagreement).toBeNull();
    // Nine brokeroff transitions: three sites, three waves.
    expect(await grid.incidents.search({ source: "site", limit: 100 })).toHaveLength(9);
  });

  it("writes a redelivered entry or incident once", async () => {
    const index = new MemoryQueueIndex();
    const log = new IncidentLog(index);
    const incident = {
      atMs: 5_000,
      source: "site" as const,
      level: "info" as const,
      message: "site X set brokeroff by shifter: test",
      site: "X",
      jobId: null,
      errorClass: null,
      errorCode: null,
      reporter: "shifter",
      details: {},
    };
    const first = await log.record(incident, "site/X:ev-1:g1");
    const again = await log.record(incident, "site/X:ev-1:g1");
    expect(again.id).toBe(first.id);
    expect(await log.search({ limit: 10 })).toEqual([first]);
    const other = await log.record(incident, "site/X:ev-2:g1");
    expect(other.id).not.toBe(first.id);

    await writeIndexEffect(index, indexPut("tasks", "t-1", 7));
    await writeIndexEffect(index, indexPut("tasks", "t-1", 7));
    expect(await index.range("tasks", 0, 10)).toEqual([{ member: "t-1", score: 7 }]);
  });

  it("reads incidents an older node wrote as JSON members of the log", async () => {
    const index = new MemoryQueueIndex();
    const old: Incident = {
      id: "old-1",
      atMs: 1_000,
      source: "pilot",
      level: "error",
      message: "payload exited with 1",
      site: "S",
      jobId: "j",
      errorClass: "payload",
      errorCode: "1",
      reporter: "p",
      details: {},
    };
    await index.add("incidents", JSON.stringify(old), old.atMs);
    const log = new IncidentLog(index);
    const { id: _, ...fields } = old;
    const recorded = await log.record({ ...fields, atMs: 2_000, message: "new" });
    expect((await log.search({ limit: 10 })).map((i) => i.id)).toEqual([recorded.id, "old-1"]);
  });

  it("raise an incident for a pilot's report of a failed payload, and none for a success", () => {
    const after = { value: "holding", context: { jobId: "t-1-0.1", site: "SITE-A", error: null } };
    const change = (event: Record<string, unknown>) => ({
      id: "t-1-0.1",
      before: after as unknown as MachineState,
      after: after as unknown as MachineState,
      event: { type: "pilot.ended", pilotId: "p-1", attempt: 1, outputs: [], ...event },
      atMs: 9_000,
    });
    expect(jobGlobalProjections(change({ exitCode: 0 }))).toEqual([]);
    const [failed] = jobGlobalProjections(
      change({ exitCode: 3, errorClass: "payload", errorMessage: "boom" }),
    );
    expect(failed).toEqual({
      effect: "incident.record",
      data: {
        atMs: 9_000,
        source: "pilot",
        level: "error",
        message: "boom",
        site: "SITE-A",
        jobId: "t-1-0.1",
        errorClass: "payload",
        errorCode: "3",
        reporter: "p-1",
        details: { exitCode: 3, log: null, attempt: 1 },
      },
    });
  });
});
