// The pilot factories page: each queue's batch jobs, demand, submission rate and throttle, recent pilot jobs, factory incidents.
import { getJson, query } from "../api.js";
import { fmtAgo, fmtTime, h, link, message, section, stateBadge, table } from "../dom.js";
import { throttled } from "../live.js";
import { routeOf, type View } from "../view.js";

interface QueueReport {
  name: string;
  site: string;
  batchSystem: string;
  partition: string | null;
  maxQueued: number;
  maxRunning: number;
  pilotsPerJob: number;
  jobs: { submitting: number; queued: number; running: number };
  demand: { activated: number; assigned: number; idleThreads: number } | null;
  submissionsPerMin: number;
  throttle: { throttled: boolean; reason: string | null; sinceMs: number | null; backoffSec: number };
  lastError: string | null;
  reportedAtMs: number | null;
}

interface FactoryView {
  name: string;
  host?: string;
  pollSeconds?: number;
  queues: QueueReport[];
}

interface PilotJobRow {
  id: string;
  factory: string;
  queue: string;
  site: string;
  batchSystem: string;
  batchId: string | null;
  state: string;
  exitCode: number | null;
  reason: string | null;
  cancelReason: string | null;
  timestamps: Record<string, number>;
}

interface IncidentRow {
  id: string;
  atMs: number;
  level: string;
  message: string;
  site: string | null;
}

function throttleCell(queue: QueueReport): HTMLElement {
  if (!queue.throttle.throttled) return h("span", { class: "status status-online" }, "ok");
  return h(
    "span",
    {},
    h("span", { class: "flag", title: queue.throttle.reason ?? "" }, "THROTTLED"),
    ` ${queue.throttle.reason ?? ""}; one submission per ${queue.throttle.backoffSec} s since ${fmtTime(queue.throttle.sinceMs)}`,
  );
}

function demandCell(queue: QueueReport): string {
  const d = queue.demand;
  return d ? `${d.activated + d.assigned} waiting, ${d.idleThreads} idle threads` : "unknown";
}

export async function factoriesPage(root: HTMLElement): Promise<View> {
  const queuesBox = h("div", {}, message("loading..."));
  const jobsBox = h("div", {});
  const incidentsBox = h("div", {});
  root.replaceChildren(
    h("h1", {}, "Pilot factories"),
    queuesBox,
    section("Factory incidents", incidentsBox),
    section("Recent pilot jobs", jobsBox),
  );
  const load = async () => {
    const [{ factories }, { pilotJobs }, { incidents }] = await Promise.all([
      getJson<{ factories: FactoryView[] }>("/api/v1/factories"),
      getJson<{ pilotJobs: PilotJobRow[] }>(`/api/v1/pilot-jobs${query({ limit: 100 })}`),
      getJson<{ incidents: IncidentRow[] }>(`/api/v1/incidents${query({ source: "factory", limit: 20 })}`),
    ]);
    const queues = factories.flatMap((f) => f.queues.map((q) => ({ factory: f, queue: q })));
    queuesBox.replaceChildren(
      queues.length === 0
        ? message("no factory has reported: `panda factory --config FILE` (docs/factory.md)")
        : table(
            [
              "factory",
              "queue",
              "site",
              "batch system",
              "queued",
              "running",
              "caps",
              "demand",
              "submits/min",
              "state",
              "last report",
              "last error",
            ],
            queues.map(({ factory, queue }) => [
              factory.name,
              queue.name,
              link(routeOf(["site", queue.site]), queue.site),
              `${queue.batchSystem}${queue.partition ? ` (${queue.partition})` : ""}`,
              queue.jobs.queued + queue.jobs.submitting,
              queue.jobs.running,
              `${queue.maxQueued} queued / ${queue.maxRunning}, ${queue.pilotsPerJob} pilot(s) per job`,
              demandCell(queue),
              queue.submissionsPerMin,
              throttleCell(queue),
              fmtAgo(queue.reportedAtMs),
              h("span", { class: queue.lastError ? "bad" : undefined }, queue.lastError ?? ""),
            ]),
            { id: "factory-queues" },
          ),
    );
    incidentsBox.replaceChildren(
      incidents.length === 0
        ? message("none")
        : table(
            ["time", "level", "site", "message"],
            incidents.map((i) => [fmtTime(i.atMs), i.level, i.site ?? "", i.message]),
            { id: "factory-incidents" },
          ),
    );
    jobsBox.replaceChildren(
      table(
        ["pilot job", "queue", "batch id", "state", "exit", "submitted", "ended", "reason"],
        pilotJobs.map((j) => {
          const endedAt = j.timestamps[j.state];
          return [
            h(
              "a",
              {
                href: `/api/v1/actors/pilot-job/${encodeURIComponent(j.id)}`,
                title: "the record and its history",
              },
              j.id,
            ),
            `${j.factory}/${j.queue}`,
            j.batchId ?? "",
            stateBadge(j.state),
            j.exitCode ?? "",
            fmtTime(j.timestamps.submitting),
            ["done", "failed", "cancelled", "lost"].includes(j.state) ? fmtTime(endedAt) : "",
            j.cancelReason ?? j.reason ?? "",
          ];
        }),
        { id: "pilot-jobs" },
      ),
    );
  };
  await load();
  const reload = throttled(load, 2000);
  return {
    onLive(m) {
      if (m.type === "resync" || m.changes.some((c) => c.kind === "factory" || c.kind === "pilot-job"))
        reload();
    },
  };
}
