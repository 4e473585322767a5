import { describe, expect, it } from "vitest";
import { registerWorkloadKinds } from "../../src/actors/index.js";
import { actorKeyOf } from "../../src/runtime/actor-ref.js";
import { KindRegistry } from "../../src/runtime/kinds.js";
import type { AnyEvent } from "../../src/runtime/records.js";
import { type LiveActor, step } from "../../src/runtime/step.js";
import type { ActorKey } from "../../src/store/types.js";
import { inFile, taskInput } from "./fixtures.js";

type Handler = (data: Record<string, unknown>) => { to: ActorKey; event: AnyEvent }[];

/**
 * A tiny in-memory world: every actor stepped by the runtime's `step()`, sends
 * routed FIFO, emitted effects answered by scripted services. It proves the
 * kinds speak the same language: each reply meets the guard waiting for it.
 */
function world(handlers: Record<string, Handler>) {
  const registry = registerWorkloadKinds(new KindRegistry());
  const actors = new Map<ActorKey, LiveActor>();
  const refusals: string[] = [];
  const queue: { to: ActorKey; event: AnyEvent }[] = [];
  let seq = 0;
  const run = (to: ActorKey, event: AnyEvent) => {
    queue.push({ to, event });
    while (queue.length > 0) {
      const next = queue.shift()!;
      const kind = next.to.slice(0, next.to.indexOf("/"));
      const result = step({
        definition: registry.get(kind),
        actor: next.to,
        current: actors.get(next.to) ?? null,
        event: next.event,
        eventId: `e${++seq}`,
        cause: "flow",
        nowMs: seq,
      });
      if (result.refusal) refusals.push(`${next.to} ${next.event.type}: ${result.refusal.code}`);
      if (result.next) actors.set(next.to, result.next);
      for (const effect of result.effects) {
        const expand = registry.get(kind).expansions?.[effect.t === "emit" ? effect.effect : ""];
        if (effect.t === "send") queue.push({ to: effect.to, event: effect.e });
        else if (expand) {
          // As the runtime delivers it: one send per target, in order.
          const expansion = expand(effect.data, effect.id);
          for (let i = 0; i < expansion.count; i++)
            queue.push({ to: actorKeyOf(expansion.target(i)), event: expansion.build(i).event as AnyEvent });
        } else queue.push(...(handlers[effect.effect]?.(effect.data as Record<string, unknown>) ?? []));
      }
    }
  };
  return { registry, actors, refusals, run, state: (key: ActorKey) => actors.get(key)?.state };
}

describe("workload flow through step()", () => {
  it("registers the five workload kinds and the factories' two", () => {
    expect(registerWorkloadKinds(new KindRegistry()).list()).toEqual([
      "dataset",
      "factory",
      "job",
      "pilot-job",
      "site",
      "subscription",
      "task",
    ]);
  });

  it("takes a task from submission to done: brokerage, dispatch transfer, pilot, output registration", () => {
    const pilotRuns = (data: Record<string, unknown>) => {
      const jobKey = `job/${data.jobId}` as ActorKey;
      const report = { pilotId: "p1", attempt: data.attempt as number };
      return [
        { to: jobKey, event: { type: "dispatch", pilotId: "p1", thread: "primary" } },
        { to: jobKey, event: { type: "pilot.starting", ...report } },
        { to: jobKey, event: { type: "pilot.running", ...report } },
        {
          to: jobKey,
          event: {
            type: "pilot.ended",
            ...report,
            exitCode: 0,
            outputs: [{ lfn: `out.${data.jobId}`, sizeBytes: 5, checksum: "ad:o" }],
          },
        },
      ];
    };
    const w = world({
      // Brokerage sends job 0 where its input is, job 1 to a site that lacks it.
      "broker.request": (data) => [
        {
          to: `job/${data.jobId}` as ActorKey,
          event: {
            type: "brokered",
            site: "BNL",
            filesToMove:
              data.jobId === "t-1-1.1"
                ? [{ lfn: "b", sizeBytes: 100, checksum: "ad:b", sourceSite: "CERN" }]
                : [],
            waitingFor: [],
            decision: { why: "test" },
          },
        },
      ],
      "transfer.start": (data) =>
        (data.files as { lfn: string }[]).map((f) => ({
          to: `subscription/${data.subscriptionId}` as ActorKey,
          event: { type: "file.done", lfn: f.lfn },
        })),
      "queue.add": pilotRuns,
    });
    w.run("site/BNL", {
      type: "create",
      input: {
        name: "BNL",
        resources: { slots: 10, memoryPerSlotMb: 2000, diskMb: 1, walltimeSec: { min: 0, max: 1 } },
      },
    });
    w.run("task/t-1", {
      type: "create",
      input: { ...taskInput, jobs: [{ inputs: [inFile("a")] }, { inputs: [inFile("b")] }] },
    });

    expect(w.state("task/t-1")?.value).toBe("done");
    expect(w.state("job/t-1-0.1")?.value).toBe("finished");
    expect(w.state("job/t-1-1.1")?.value).toBe("finished");
    expect(w.state("subscription/dis.t-1-1.1@BNL")?.value).toBe("done");
    expect(w.state("dataset/dis.t-1-1.1")?.context).toMatchObject({ replicas: { CERN: ["b"], BNL: ["b"] } });
    expect(w.state("dataset/mc.out")?.value).toBe("frozen");
    expect(w.state("dataset/mc.out")?.context).toMatchObject({
      fileCount: 2,
      replicas: { BNL: ["out.t-1-0.1", "out.t-1-1.1"] },
    });
    expect(w.state("dataset/mc.out.sub.BNL")?.context.fileCount).toBe(2);
    expect(w.state("site/BNL")?.context).toMatchObject({ totals: { finished: 2 } });
    // The second job's `create` of the existing sub-destination is the only refusal: an ensure-exists.
    expect(w.refusals).toEqual(["dataset/mc.out.sub.BNL create: ACTOR_EXISTS"]);
  });
});
