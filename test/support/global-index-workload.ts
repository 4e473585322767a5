/**
 * A workload that touches every global index (sites, tasks, the catalog, the
 * incident log), sent as events straight to the actors (never through
 * `submitTask` or `ensureSite`, which also write their entries), and the check
 * that the indexes agree with the actors it made.
 */
import { globalEffectNames } from "../../src/actors/shared/global-effects.js";
import { refs } from "../../src/actors/shared/names.js";
import type { TaskInput } from "../../src/actors/task/schema.js";
import type { ActorRef } from "../../src/runtime/actor-ref.js";
import { decodeEffectPayload } from "../../src/runtime/records.js";
import type { Runtime } from "../../src/runtime/runtime.js";
import { catalogQueues, queueNames } from "../../src/store/index-names.js";
import type { QueueIndex } from "../../src/store/queue-index.js";
import type { Store } from "../../src/store/types.js";
import { IncidentLog } from "../../src/workload/incident-log.js";

const RESOURCES = { slots: 10, memoryPerSlotMb: 4000, diskMb: 100_000, walltimeSec: { min: 0, max: 86_400 } };
const SITES = ["GS-A", "GS-B", "GS-C"];

export interface PlannedSend {
  ref: ActorRef;
  event: Record<string, unknown>;
  eventId: string;
}

/** What the workload created: the ids the indexes must hold. */
export interface Made {
  sites: Set<string>;
  tasks: Set<string>;
  datasets: Set<string>;
  subscriptions: Set<string>;
}

export function emptyMade(): Made {
  return { sites: new Set(), tasks: new Set(), datasets: new Set(), subscriptions: new Set() };
}

function taskInput(taskId: string, jobs: number, atMs: number): TaskInput {
  return {
    taskId,
    user: "gi-user",
    group: null,
    type: "production",
    priority: 100,
    resources: { cores: 1, memoryMb: 1000, diskMb: 1000, walltimeSec: 600 },
    release: null,
    outputs: { dataset: `${taskId}.out`, destination: null },
    payload: { command: ["true"] },
    requestedSite: null,
    jobs: Array.from({ length: jobs }, () => ({ inputs: [] })),
    atMs,
  };
}

/**
 * Wave `w`: the sites (first wave), tasks, datasets (one a dispatch dataset,
 * which the catalog leaves out), subscriptions, and every site set brokeroff
 * and back online (an incident each time). Records in `made` what it creates.
 */
export function planWave(w: number, atMs: number, made: Made): PlannedSend[] {
  const sends: PlannedSend[] = [];
  const send = (ref: ActorRef, event: Record<string, unknown>, eventId: string) =>
    sends.push({ ref, event: { ...event }, eventId });
  if (w === 0) {
    for (const site of SITES) {
      made.sites.add(site);
      send(
        refs.site(site),
        { type: "create", input: { name: site, resources: RESOURCES, atMs } },
        `gi-site-${site}`,
      );
    }
  }
  for (let t = 0; t < 3; t++) {
    const taskId = `gi-t${w}-${t}`;
    made.tasks.add(taskId);
    made.datasets.add(`${taskId}.out`);
    send(refs.task(taskId), { type: "create", input: taskInput(taskId, 3, atMs) }, `gi-task-${taskId}`);
  }
  for (const name of [`gi.ds${w}.a`, `gi.ds${w}.b`, `dis.gi${w}`]) {
    if (!name.startsWith("dis.")) made.datasets.add(name);
    send(refs.dataset(name), { type: "create", input: { name, state: "open", atMs } }, `gi-ds-${name}`);
  }
  const subscription = `gi.ds${w}.a@${SITES[w % SITES.length]}`;
  made.subscriptions.add(subscription);
  send(
    refs.subscription(subscription),
    {
      type: "create",
      input: { id: subscription, dataset: `gi.ds${w}.a`, site: SITES[w % SITES.length], files: [], atMs },
    },
    `gi-sub-${subscription}`,
  );
  for (const site of SITES) {
    for (const status of ["brokeroff", "online"]) {
      send(
        refs.site(site),
        { type: "setStatus", status, by: "shifter", reason: `wave ${w}`, atMs },
        `gi-${site}-${w}-${status}`,
      );
    }
  }
  return sends;
}

async function members(index: QueueIndex, name: string): Promise<string[]> {
  return (await index.range(name, 0, 1_000_000)).map((e) => e.member).sort();
}

function sameSet(what: string, actual: string[], expected: Set<string>): string | null {
  const want = [...expected].sort();
  const dupes = actual.length !== new Set(actual).size;
  return dupes || actual.join("\n") !== want.join("\n")
    ? `${what}: index holds [${actual.join(", ")}], actors are [${want.join(", ")}]`
    : null;
}

/** Each site's brokeroff transitions (`site@atMs`), from its history. */
async function brokeroffTransitions(runtime: Runtime, sites: Set<string>): Promise<string[]> {
  const found: string[] = [];
  for (const site of sites) {
    const view = await runtime.inspect(refs.site(site), 100_000);
    for (const entry of view?.history ?? []) {
      if (entry.refused || entry.to !== "brokeroff" || entry.from === "brokeroff") continue;
      found.push(`${site}@${entry.at}`);
    }
  }
  return found.sort();
}

/**
 * Null when every global index agrees with the actors: each listed entry
 * belongs to an actor that exists and each actor is listed, once; one
 * incident per brokeroff transition, at its commit's time; else what differs.
 */
export async function indexDisagreement(
  runtime: Runtime,
  index: QueueIndex,
  made: Made,
): Promise<string | null> {
  for (const ref of [...made.tasks].map(refs.task)) {
    if (!(await runtime.readState(ref))) return `${ref.kind}/${ref.id} does not exist yet`;
  }
  const incidents = await new IncidentLog(index).search({ source: "site", limit: 1_000_000 });
  const ids = incidents.map((i) => i.id);
  if (new Set(ids).size !== ids.length) return "an incident id is there twice";
  const expectedIncidents = await brokeroffTransitions(runtime, made.sites);
  const actualIncidents = incidents.map((i) => `${i.site}@${i.atMs}`).sort();
  return (
    sameSet("sites", await members(index, queueNames.sites()), made.sites) ??
    sameSet("tasks", await members(index, queueNames.tasks()), made.tasks) ??
    sameSet("datasets", await members(index, catalogQueues.datasets), made.datasets) ??
    sameSet("subscriptions", await members(index, catalogQueues.subscriptions), made.subscriptions) ??
    (actualIncidents.join(",") === expectedIncidents.join(",")
      ? null
      : `incidents at [${actualIncidents.join(", ")}], brokeroff transitions at [${expectedIncidents.join(", ")}]`)
  );
}

const GLOBAL_EFFECTS = new Set<string>(Object.values(globalEffectNames));

/** Global index effects still in some shard's outbox: not written (or not acknowledged) yet. */
export async function globalEffectsPending(store: Store, shards: number): Promise<number> {
  let pending = 0;
  for (let shard = 0; shard < shards; shard++) {
    for (const entry of await store.readOutbox(shard, 100_000)) {
      const effect = decodeEffectPayload(entry.payload);
      if (effect.t === "emit" && GLOBAL_EFFECTS.has(effect.effect)) pending++;
    }
  }
  return pending;
}
