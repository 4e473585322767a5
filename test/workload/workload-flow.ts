import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { SiteInput } from "../../src/actors/site/schema.js";
import type { TaskContext } from "../../src/actors/task/schema.js";
import type { RuntimeOptions } from "../../src/runtime/runtime-options.js";
import { lastDecision } from "../../src/server/why.js";
import { type QueueIndex, queueNames } from "../../src/store/queue-index.js";
import type { Store } from "../../src/store/types.js";
import { isStorageError } from "../../src/transfer/storage-element.js";
import { readContext } from "../../src/workload/context.js";
import { WorkloadError } from "../../src/workload/errors.js";
import { Grid, type GridConfig } from "../../src/workload/grid.js";
import { FakePilots, type PilotBehaviour } from "../support/fake-pilots.js";

export type Backend = () => Promise<{ store: Store; index: QueueIndex; cleanup: () => Promise<void> }>;

const resources = {
  slots: 100,
  memoryPerSlotMb: 4000,
  diskMb: 1_000_000,
  walltimeSec: { min: 0, max: 86_400 },
};

function site(name: string, extra: Partial<SiteInput> = {}): Omit<SiteInput, "atMs"> {
  return { name, resources, ...extra };
}

const payload = { command: ["true"] };

/** The workload's data flow, brokerage, retries, quotas and site health, on one backend. */
export function describeWorkloadFlow(name: string, backend: Backend): void {
  describe(`workload flow on ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
      cleanups.length = 0;
    });

    async function boot(
      config: GridConfig,
      pilots: Record<string, { slots: number; behaviour: PilotBehaviour }>,
      runtime: Partial<RuntimeOptions> = {},
    ) {
      const { store, index, cleanup } = await backend();
      const storageRoot = mkdtempSync(join(tmpdir(), "panda-grid-"));
      const grid = new Grid({
        store,
        index,
        storageRoot,
        config: { transfer: { retryBaseDelayMs: 10 }, ...config },
        runtime: { shardCount: 16, sweepEveryMs: 200, ...runtime },
      });
      const fake = new FakePilots(grid, pilots);
      await grid.start();
      cleanups.push(async () => {
        fake.close();
        await grid.stop();
        await cleanup();
        rmSync(storageRoot, { recursive: true, force: true });
      });
      return { grid, fake };
    }

    /** Resolves when the task reaches one of its final states (subscribe before submitting). */
    function taskEnded(grid: Grid, taskId: string) {
      return grid.runtime.waitForTransition({ kind: "task", id: taskId }, (t) => t.state?.status === "done");
    }

    async function job(grid: Grid, id: string): Promise<{ state: string; context: JobContext }> {
      const view = await readContext(grid.ctx, "job", id);
      if (!view) throw new Error(`no job ${id}`);
      return view;
    }

    async function putDataset(grid: Grid, dataset: string, bySite: Record<string, number[]>) {
      for (const [siteName, indices] of Object.entries(bySite)) {
        await grid.putFiles(
          dataset,
          siteName,
          indices.map((i) => ({
            lfn: `${dataset}._${String(i).padStart(5, "0")}.root`,
            bytes: Buffer.from(`file ${i}`),
          })),
        );
      }
    }

    it("brokers a 100-job task by data locality: each job runs where its input is", async () => {
      // The best site, not a weighted draw among the best (the default spreads load as JEDI does).
      const brokerage = { randomTopCandidates: 1 };
      const { grid, fake } = await boot(
        { sites: [site("A"), site("B"), site("C", { status: "offline" })], brokerage },
        {
          A: { slots: 200, behaviour: { kind: "finish" } },
          B: { slots: 200, behaviour: { kind: "finish" } },
          C: { slots: 200, behaviour: { kind: "finish" } },
        },
      );
      const atA = Array.from({ length: 60 }, (_, i) => i);
      const atB = Array.from({ length: 40 }, (_, i) => 60 + i);
      await putDataset(grid, "mc11.locality", { A: atA, B: atB });
      const taskId = "t-locality";
      const ended = taskEnded(grid, taskId);
      const { jobs } = await grid.submit({ taskId, input: { dataset: "mc11.locality" }, payload }, "alice");
      expect(jobs).toBe(100);
      const end = await ended;
      expect(end.state?.value).toBe("done");
      const task = (end.state?.context ?? {}) as TaskContext;
      expect(task.counts.finished).toBe(100);
      for (let i = 0; i < 100; i++) {
        const j = await job(grid, `${taskId}-${i}.1`);
        expect(j.state).toBe("finished");
        expect(j.context.site, `job ${i}`).toBe(i < 60 ? "A" : "B");
        // Its input was already there: no transfer, straight to activated.
        expect(j.context.timestamps.assigned).toBeUndefined();
        const decision = (await decisionOf(grid, `${taskId}-${i}.1`))!;
        expect(decision.candidates.map((c) => c.site)).toEqual(["A", "B", "C"]);
        for (const candidate of decision.candidates) {
          expect(candidate.score !== undefined || (candidate.excluded?.length ?? 0) > 0, candidate.site).toBe(
            true,
          );
        }
        expect(decision.candidates.find((c) => c.site === "C")?.excluded?.[0]?.filter).toBe("status");
      }
      expect(fake.ran.get("C")).toBeUndefined();
      expect((fake.ran.get("A") ?? []).length).toBe(60);
      // Outputs were registered in the task's output dataset, frozen at the end.
      const output = await waitUntil(async () => {
        const ds = await readContext(grid.ctx, "dataset", `${taskId}.out`);
        return ds?.state === "frozen" && ds;
      });
      expect(output?.context.fileCount).toBe(100);
    });

    it("keeps jobs assigned until a real copy completes their dispatch subscription, then activates them", async () => {
      const { grid } = await boot(
        { sites: [site("A"), site("B")] },
        {
          A: { slots: 10, behaviour: { kind: "finish" } },
          B: { slots: 10, behaviour: { kind: "finish" } },
        },
      );
      await putDataset(grid, "data.staged", { A: [0, 1, 2, 3] });
      const taskId = "t-staged";
      const ended = taskEnded(grid, taskId);
      await grid.submit(
        { taskId, site: "B", input: { dataset: "data.staged", filesPerJob: 2 }, payload },
        "bob",
      );
      await ended;
      for (const index of [0, 1]) {
        const j = await job(grid, `${taskId}-${index}.1`);
        expect(j.state).toBe("finished");
        expect(j.context.site).toBe("B");
        const t = j.context.timestamps;
        expect(t.assigned).toBeDefined();
        expect(t.activated).toBeGreaterThanOrEqual(t.assigned!);
        const subscription = await readContext(grid.ctx, "subscription", j.context.dispatch!.subscription);
        expect(subscription?.state).toBe("done");
        expect(subscription?.context.timestamps.done).toBeLessThanOrEqual(t.activated!);
      }
      // The bytes really moved: B's storage element holds every input with its checksum.
      for (const i of [0, 1, 2, 3]) {
        const lfn = `data.staged._0000${i}.root`;
        const atB = await grid.ctx.storage.get("B")!.stat(lfn);
        const atA = await grid.ctx.storage.get("A")!.stat(lfn);
        expect(atB?.checksum).toBe(atA?.checksum);
      }
    });

    it("retries a failure class on other sites and stops after the last attempt", async () => {
      const fail: PilotBehaviour = { kind: "fail", errorClass: "payload", exitCode: 3 };
      const { grid } = await boot(
        { sites: [site("A"), site("B"), site("C")] },
        {
          A: { slots: 5, behaviour: fail },
          B: { slots: 5, behaviour: fail },
          C: { slots: 5, behaviour: fail },
        },
      );
      const taskId = "t-retry";
      const ended = taskEnded(grid, taskId);
      await grid.submit(
        { taskId, jobs: 1, payload, retry: { maxAttempts: 3, retryErrorClasses: ["payload"] } },
        "carol",
      );
      const end = await ended;
      expect(end.state?.value).toBe("failed");
      const sites = [];
      for (const attempt of [1, 2, 3]) {
        const j = await job(grid, `${taskId}-0.${attempt}`);
        expect(j.state).toBe("failed");
        expect(j.context.error?.class).toBe("payload");
        expect(j.context.exitCode).toBe(3);
        sites.push(j.context.site);
      }
      expect(new Set(sites).size).toBe(3);
      expect(await readContext(grid.ctx, "job", `${taskId}-0.4`)).toBeNull();
    });

    it("holds a user's jobs beyond the quota throttled until earlier ones end", async () => {
      const { grid, fake } = await boot(
        { sites: [site("A")], maxActiveJobsPerUser: 2 },
        {
          A: { slots: 10, behaviour: { kind: "hold" } },
        },
      );
      const taskId = "t-quota";
      const ended = taskEnded(grid, taskId);
      await grid.submit({ taskId, jobs: 5, payload }, "dave");
      const states = async () =>
        Promise.all(
          [0, 1, 2, 3, 4].map(
            async (i) => (await readContext(grid.ctx, "job", `${taskId}-${i}.1`))?.state ?? "none",
          ),
        );
      // Two run, three wait throttled; each finished job lets exactly one more in.
      await waitUntil(
        async () => count(await states(), "throttled") === 3 && count(await states(), "running") === 2,
      );
      await fake.finishHeld("A");
      await waitUntil(
        async () => count(await states(), "throttled") === 2 && count(await states(), "running") === 2,
      );
      for (let i = 0; i < 4; i++) await fakeFinishWhenHeld(fake);
      const end = await ended;
      expect((end.state?.context as TaskContext | undefined)?.counts.finished).toBe(5);
      for (let i = 0; i < 5; i++) {
        const j = await job(grid, `${taskId}-${i}.1`);
        expect(j.state).toBe("finished");
      }
      const throttledEver = [];
      for (let i = 0; i < 5; i++) {
        if ((await job(grid, `${taskId}-${i}.1`)).context.timestamps.throttled) throttledEver.push(i);
      }
      expect(throttledEver).toHaveLength(3);
    });

    it("kills a task whose jobs admission control still holds: each is created, then cancelled", async () => {
      // 40 jobs a second: most of the task's 30 are still held when the kill comes.
      const { grid } = await boot(
        { sites: [site("A")] },
        {},
        { intake: { initialPerSecond: 40, maxPerSecond: 40 } },
      );
      const taskId = "t-held-kill";
      const ended = taskEnded(grid, taskId);
      await grid.submit({ taskId, jobs: 30, payload }, "hank");
      expect(grid.runtime.intakeQueued()).toBeGreaterThan(10);
      await grid.runtime.send(
        { kind: "task", id: taskId },
        { type: "kill", by: "hank", reason: "not needed" },
      );
      // A kill that reached a job before its creation would be refused, the job created after it would
      // live on, and the task would never end.
      const end = await ended;
      expect(end.state?.value).toBe("aborted");
      expect((end.state?.context as TaskContext | undefined)?.counts).toMatchObject({ cancelled: 30 });
      for (let i = 0; i < 30; i++) expect((await job(grid, `${taskId}-${i}.1`)).state).toBe("cancelled");
      expect(grid.runtime.intakeQueued()).toBe(0);
    });

    it("takes a job killed while throttled out of the quota's queue, so a freed slot goes to the next", async () => {
      const { grid, fake } = await boot(
        { sites: [site("A")], maxActiveJobsPerUser: 1 },
        { A: { slots: 10, behaviour: { kind: "hold" } } },
      );
      const taskId = "t-quota-kill";
      const ended = taskEnded(grid, taskId);
      await grid.submit({ taskId, jobs: 3, payload }, "erin");
      const stateOf = async (i: number) =>
        (await readContext(grid.ctx, "job", `${taskId}-${i}.1`))?.state ?? "none";
      const states = async () => Promise.all([0, 1, 2].map(stateOf));
      await waitUntil(
        async () => count(await states(), "throttled") === 2 && count(await states(), "running") === 1,
      );
      const throttledIds: number[] = [];
      for (const i of [0, 1, 2]) if ((await stateOf(i)) === "throttled") throttledIds.push(i);
      const [killed, waiting] = throttledIds as [number, number];
      await grid.runtime.send(
        { kind: "job", id: `${taskId}-${killed}.1` },
        { type: "kill", by: "erin", reason: "not needed" },
      );
      await waitUntil(async () => (await stateOf(killed)) === "cancelled");
      const throttledQueue = queueNames.userThrottled("erin");
      await waitUntil(async () => (await grid.runtime.indexSize(throttledQueue)) === 1);
      expect((await grid.runtime.readIndex(throttledQueue, 0, 10)).map((e) => e.member)).toEqual([
        `${taskId}-${waiting}.1`,
      ]);
      await fake.finishHeld("A");
      await fakeFinishWhenHeld(fake);
      const end = await ended;
      expect((end.state?.context as TaskContext | undefined)?.counts).toMatchObject({
        finished: 2,
        cancelled: 1,
      });
      expect(await stateOf(waiting)).toBe("finished");
      expect(await grid.runtime.indexSize(throttledQueue)).toBe(0);
      expect(await grid.runtime.readCounters("users:erin:")).toEqual(new Map());
    });

    it("turns a black-hole site brokeroff with an incident, and sends it nothing after", async () => {
      const thresholds = { blackHoleMinJobs: 5, blackHoleFailureFraction: 0.8 };
      const { grid } = await boot(
        { sites: [site("HOLE", { thresholds })] },
        {
          HOLE: { slots: 20, behaviour: { kind: "fail", errorClass: "pilot", exitCode: 1 } },
        },
      );
      const taskId = "t-hole";
      const ended = taskEnded(grid, taskId);
      await grid.submit({ taskId, jobs: 8, payload, retry: { maxAttempts: 1 } }, "erin");
      await ended;
      // The site hears each outcome by its own effect: wait until all eight are counted.
      const hole = await waitUntil(async () => {
        const site = await readContext(grid.ctx, "site", "HOLE");
        return site && site.context.totals.failed === 8 ? site : undefined;
      });
      expect(hole?.context.status).toBe("brokeroff");
      expect(hole?.context.incidents.at(-1)?.failureFraction).toBeGreaterThanOrEqual(0.8);
      const before = hole?.context.totals.failed ?? 0;
      const taskAfter = "t-after";
      await grid.submit({ taskId: taskAfter, jobs: 1, payload }, "erin");
      const waiting = await waitUntil(async () => {
        const j = await readContext(grid.ctx, "job", `${taskAfter}-0.1`);
        return j && (await decisionOf(grid, `${taskAfter}-0.1`)) ? j : undefined;
      });
      expect(waiting.context.site).toBeNull();
      const decision = (await decisionOf(grid, `${taskAfter}-0.1`))!;
      expect(decision.candidates[0]?.excluded?.[0]?.reason).toMatch(/brokeroff/);
      expect((await readContext(grid.ctx, "site", "HOLE"))?.context.totals.failed).toBe(before);
    });

    it("blames a site for its own failures only: 25 payload exits leave it online, 25 stage-in failures do not", async () => {
      const thresholds = { blackHoleMinJobs: 20, blackHoleFailureFraction: 0.7 };
      const { grid } = await boot(
        { sites: [site("USERS", { thresholds }), site("BROKEN", { thresholds })] },
        {
          USERS: { slots: 25, behaviour: { kind: "fail", errorClass: "payload", exitCode: 1 } },
          BROKEN: { slots: 25, behaviour: { kind: "fail", errorClass: "stagein", exitCode: 0 } },
        },
      );
      const retry = { maxAttempts: 1 };
      for (const where of ["USERS", "BROKEN"]) {
        const taskId = `t-${where.toLowerCase()}`;
        const ended = taskEnded(grid, taskId);
        await grid.submit({ taskId, jobs: 25, payload, retry, site: where }, "gina");
        await ended;
      }
      const counted = (name: string) =>
        waitUntil(async () => {
          const view = await readContext(grid.ctx, "site", name);
          return view && view.context.totals.failed === 25 ? view.context : undefined;
        });
      const users = await counted("USERS");
      expect(users.status).toBe("online");
      expect(users.incidents).toEqual([]);
      const broken = await counted("BROKEN");
      expect(broken.status).toBe("brokeroff");
      expect(broken.incidents.at(-1)).toMatchObject({ errorClasses: { stagein: 20 } });
    });

    it("refuses bad input with clear errors and changes nothing", async () => {
      const { grid } = await boot({ sites: [site("A")] }, { A: { slots: 1, behaviour: { kind: "finish" } } });
      await expect(
        grid.submit({ input: { dataset: "no.such.dataset" }, payload }, "frank"),
      ).rejects.toMatchObject({
        code: "DATASET_NOT_FOUND",
      });
      await expect(grid.submit({ jobs: 0, payload }, "frank")).rejects.toThrow(/jobs/);
      await expect(grid.submit({ jobs: 1 }, "frank")).rejects.toThrow(/payload/);
      await putDataset(grid, "frozen.ds", { A: [0] });
      await grid.runtime.send({ kind: "dataset", id: "frozen.ds" }, { type: "freeze" });
      const late = grid.putFiles("frozen.ds", "A", [{ lfn: "frozen.ds.late", bytes: Buffer.from("late") }]);
      await expect(late).rejects.toBeInstanceOf(WorkloadError);
      await expect(late).rejects.toMatchObject({ code: "DATASET_FROZEN" });
      expect(await grid.ctx.storage.get("A")!.stat("frozen.ds.late")).toBeNull();
      expect((await readContext(grid.ctx, "dataset", "frozen.ds"))?.context.fileCount).toBe(1);

      const mismatch = grid.putFiles("open.ds", "A", [
        { lfn: "open.ds.bad", bytes: Buffer.from("bytes"), checksum: "adler32:00000001" },
      ]);
      await expect(mismatch).rejects.toSatisfy(
        (err: unknown) => isStorageError(err) && err.code === "CHECKSUM_MISMATCH",
      );
      expect(await grid.ctx.storage.get("A")!.stat("open.ds.bad")).toBeNull();
      expect((await readContext(grid.ctx, "dataset", "open.ds"))?.context.fileCount ?? 0).toBe(0);

      const traversal = grid.putFiles("open.ds", "A", [{ lfn: "../../etc/passwd", bytes: Buffer.from("x") }]);
      await expect(traversal).rejects.toSatisfy(
        (err: unknown) => isStorageError(err) && err.code === "BAD_PATH",
      );
    });
  });
}

/** The job's brokerage decision, which its `brokered` history entry carries. */
async function decisionOf(grid: Grid, jobId: string) {
  const view = await grid.runtime.inspect({ kind: "job", id: jobId });
  return view ? lastDecision(view.history) : null;
}

function count(values: string[], wanted: string): number {
  return values.filter((v) => v === wanted).length;
}

/** Polls store state with a bound: for conditions spread over many actors that no single event announces. */
async function waitUntil<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function fakeFinishWhenHeld(fake: FakePilots): Promise<void> {
  await waitUntil(async () => (await fake.finishHeld("A")) !== undefined);
}
