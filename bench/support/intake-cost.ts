/**
 * What accepting work costs a node, apart from running it: node CPU per job
 * to take submissions while admission control holds every one of their jobs
 * (a gate that lets one delivery through every ten minutes). At N times the
 * rate a node sustains, intake takes N times this per sustained job, out of
 * the CPU that runs work in flight.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Redis } from "ioredis";
import { gridModules } from "./server-module.js";

export interface IntakeCost {
  cpuUsPerJob: number;
  /** Heap the held jobs keep (after a full collection): what a backlog of held work costs in memory. */
  heapBytesPerJob: number;
  jobs: number;
  held: number;
}

/** A full collection, for heap figures that count only what is kept (the flag can be set at run time). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

export async function intakeCost(redisUrl: string, tasks: number, jobsPerTask: number): Promise<IntakeCost> {
  const [{ Grid }, { RedisStore }, { RedisQueueIndex }] = await gridModules();
  const prefix = `bench:intake:${Date.now()}`;
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  const grid = new Grid({
    store: new RedisStore({ client: redis, prefix }),
    index: new RedisQueueIndex(redis, prefix),
    storageRoot: "/nonexistent-bench-intake",
    config: { sites: [], maxActiveJobsPerUser: 1_000_000_000 },
    runtime: { intake: { initialPerSecond: 1, minPerSecond: 1, maxPerSecond: 1, tickMs: 600_000 } },
  });
  await grid.start();
  try {
    const submitAll = async (label: string, count: number) => {
      const heldBefore = grid.runtime.intakeQueued();
      const submissions = [];
      for (let i = 0; i < count; i++)
        submissions.push(
          grid.submit(
            {
              taskId: `${label}-${i}`,
              jobs: jobsPerTask,
              type: "production",
              payload: { command: ["true"] },
            },
            "bench",
          ),
        );
      await Promise.all(submissions);
      // Each task's commit hands its jobs (and its output dataset) to the gate as its effects are delivered, right after.
      const deadline = Date.now() + 60_000;
      while (grid.runtime.intakeQueued() < heldBefore + count * jobsPerTask) {
        if (Date.now() > deadline) throw new Error("intake cost: the submitted jobs never reached the gate");
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await submitAll("warm", Math.max(1, Math.floor(tasks / 5)));
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    const before = process.cpuUsage();
    await submitAll("measured", tasks);
    const used = process.cpuUsage(before);
    collectGarbage();
    const heapAfter = process.memoryUsage().heapUsed;
    return {
      cpuUsPerJob: (used.user + used.system) / (tasks * jobsPerTask),
      heapBytesPerJob: (heapAfter - heapBefore) / (tasks * jobsPerTask),
      jobs: tasks * jobsPerTask,
      held: grid.runtime.intakeQueued(),
    };
  } finally {
    await grid.stop();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
    redis.disconnect();
  }
}
