import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BatchJobStatus, PilotJobSpec } from "../../src/factory/batch-system.js";
import { LocalBatchSystem } from "../../src/factory/local-batch.js";
import { until } from "../cli/panda-process.js";

describe("the local batch system", () => {
  let dir: string;
  let batch: LocalBatchSystem;

  function spec(pilotJobId: string, script: string, copies = 1): PilotJobSpec {
    return {
      pilotJobId,
      argv: ["/bin/sh", "-c", script],
      env: { PANDA_TEST_SECRET: "s3cret" },
      copies,
      partition: null,
      walltimeSec: 60,
      cores: 1,
      memoryMb: 100,
      workdir: join(dir, "work", pilotJobId),
      logPath: join(dir, "logs", `${pilotJobId}.log`),
    };
  }

  async function statusWhen(
    system: LocalBatchSystem,
    batchId: string,
    accept: (s: BatchJobStatus) => boolean,
  ): Promise<BatchJobStatus> {
    return until(
      async () => (await system.status()).find((s) => s.batchId === batchId && accept(s)),
      10_000,
      `job ${batchId}`,
    );
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "panda-local-batch-"));
    batch = new LocalBatchSystem({ stateDir: join(dir, "state"), killWaitMs: 2_000 });
  });

  afterEach(() => {
    batch.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a job in its workdir with its env, and reports its exit code", async () => {
    const batchId = await batch.submit(spec("pj-1", 'pwd; echo "$PANDA_TEST_SECRET"; exit 3'));
    const ended = await statusWhen(batch, batchId, (s) => s.state !== "running");
    expect(ended).toMatchObject({ pilotJobId: "pj-1", state: "failed", exitCode: 3 });
    expect(readFileSync(join(dir, "logs", "pj-1.log"), "utf8")).toBe(
      `${join(dir, "work", "pj-1")}\ns3cret\n`,
    );
  });

  it("cancels a running job with SIGTERM", async () => {
    const batchId = await batch.submit(spec("pj-2", "trap 'exit 0' TERM; while :; do sleep 0.1; done"));
    expect((await batch.status()).find((s) => s.batchId === batchId)?.state).toBe("running");
    await batch.cancel([batchId]);
    const ended = await statusWhen(batch, batchId, (s) => s.state !== "running");
    expect(ended.state).toBe("cancelled");
  });

  it("another process sees the jobs; one that ended unwatched is done with an unknown exit code", async () => {
    const marker = join(dir, "go");
    const batchId = await batch.submit(spec("pj-3", `while [ ! -e ${marker} ]; do sleep 0.1; done`));
    const adopter = new LocalBatchSystem({ stateDir: join(dir, "state") });
    expect((await adopter.status()).map((s) => [s.batchId, s.state])).toEqual([[batchId, "running"]]);
    // The first system records the exit as it happens; drop its record of it to play a dead watcher.
    const original = readFileSync(join(dir, "state", `${batchId}.json`), "utf8");
    writeFileSync(marker, "");
    await batch.exited(batchId);
    writeFileSync(join(dir, "state", `${batchId}.json`), original);
    const ended = await statusWhen(adopter, batchId, (s) => s.state !== "running");
    expect(ended).toMatchObject({ state: "done", exitCode: null });
    expect(ended.reason).toContain("unknown");
  });

  it("runs copies side by side and keeps the first failure", async () => {
    const out = join(dir, "copies.txt");
    const batchId = await batch.submit(spec("pj-4", `echo x >> ${out}; exit 5`, 3));
    const ended = await statusWhen(batch, batchId, (s) => s.state !== "running");
    expect(ended.exitCode).toBe(5);
    expect(readFileSync(out, "utf8")).toBe("x\nx\nx\n");
  });

  it("forgets ended jobs after keepEndedMs", async () => {
    const quick = new LocalBatchSystem({ stateDir: join(dir, "quick"), keepEndedMs: 0 });
    const batchId = await quick.submit(spec("pj-5", "exit 0"));
    await quick.exited(batchId);
    expect(existsSync(join(dir, "quick", `${batchId}.json`))).toBe(false);
    expect(await quick.status()).toEqual([]);
  });
});
