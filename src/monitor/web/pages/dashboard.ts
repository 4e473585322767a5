/** The dashboard page: the grid at a glance, with its sites' table and the throughput chart. */
import { getJson, type JobRow, type SiteView, type TaskRow } from "../api.js";
import { fmtTime, h, link, message, section, stateBadge, table, topState } from "../dom.js";
import { inBackground, type LiveChange, throttled } from "../live.js";
import { loadSeries, perSiteChart, throughputChart } from "../series.js";
import { routeOf, type View } from "../view.js";
import { progressBar } from "./task.js";

const LIVE_ROWS = 40;

export function siteTable(sites: SiteView[]): HTMLTableElement {
  const n = (site: SiteView, state: string) => site.jobs[state] ?? 0;
  return table(
    [
      "site",
      "status",
      "pilots",
      "activated",
      "running",
      "finished",
      "failed",
      "failure %",
      "queue",
      "alerts",
    ],
    sites.map((s) => [
      link(routeOf(["site", s.name]), s.name),
      h("span", { class: `status status-${s.status}` }, s.status),
      s.pilots.length,
      n(s, "activated"),
      n(s, "running") + n(s, "starting") + n(s, "sent"),
      link(routeOf(["jobs"], { site: s.name, state: "finished" }), String(s.totals.finished)),
      link(routeOf(["jobs"], { site: s.name, state: "failed" }), String(s.totals.failed), {
        class: s.totals.failed > 0 ? "bad" : undefined,
        "data-failed-site": s.name,
      }),
      h("span", { class: s.failurePercent >= 50 ? "bad" : undefined }, `${s.failurePercent.toFixed(1)}`),
      s.queueDepth.production + s.queueDepth.analysis,
      s.starved
        ? h("span", { class: "flag", title: "queued work and no pilot requests in the window" }, "no pilots")
        : "",
    ]),
    { id: "site-table" },
  );
}

/** A row of the live activity table; updated in place when the job moves on. */
function liveRow(
  jobId: string,
  state: string,
  event: string,
  atMs: number,
  site: string | null,
): HTMLTableRowElement {
  const row = h("tr", { "data-job-id": jobId });
  fillLiveRow(row, jobId, state, event, atMs, site);
  return row;
}

function fillLiveRow(
  row: HTMLTableRowElement,
  jobId: string,
  state: string,
  event: string,
  atMs: number,
  site: string | null,
) {
  row.replaceChildren(
    h("td", {}, link(routeOf(["job", jobId]), jobId)),
    h("td", {}, stateBadge(state)),
    h("td", { class: "site" }, site ?? row.querySelector(".site")?.textContent ?? ""),
    h("td", {}, event),
    h("td", { title: fmtTime(atMs) }, fmtTime(atMs).slice(11)),
  );
}

/** The first page: sites, live job activity, recent failures, tasks and the charts. */
export async function dashboard(root: HTMLElement): Promise<View> {
  const sitesBox = h("div", {}, message("loading sites..."));
  const failuresBox = h("div");
  const tasksBox = h("div");
  const chartsBox = h("div", { class: "charts" });
  const liveBody = h("tbody");
  const liveTable = h(
    "table",
    { id: "live-jobs" },
    h(
      "thead",
      {},
      h("tr", {}, ...["job", "state", "site", "last event", "updated"].map((t) => h("th", {}, t))),
    ),
    liveBody,
  );
  root.replaceChildren(
    h("h1", {}, "Dashboard"),
    section("Sites", sitesBox),
    h(
      "div",
      { class: "columns" },
      section("Live job activity", liveTable),
      section("Recent failures", failuresBox),
    ),
    section("Throughput and queues", chartsBox),
    section("Tasks", tasksBox),
  );

  const loadSites = async () => {
    const { sites } = await getJson<{ sites: SiteView[] }>("/api/v1/monitor/sites");
    sitesBox.replaceChildren(sites.length ? siteTable(sites) : message("no sites"));
  };
  const loadFailures = async () => {
    const { jobs } = await getJson<{ jobs: JobRow[] }>("/api/v1/jobs?state=failed&limit=8");
    failuresBox.replaceChildren(
      jobs.length
        ? table(
            ["job", "site", "error"],
            jobs.map((j) => [
              link(routeOf(["job", j.jobId]), j.jobId),
              j.site ?? "",
              j.error ? h("span", { class: "bad" }, `${j.error.class}: ${j.error.message}`) : "",
            ]),
            { id: "recent-failures" },
          )
        : message("no failed jobs"),
    );
  };
  const loadTasks = async () => {
    const { tasks } = await getJson<{ tasks: TaskRow[] }>("/api/v1/tasks");
    tasksBox.replaceChildren(
      tasks.length
        ? table(
            ["task", "state", "user", "type", "jobs", "progress"],
            tasks
              .slice(-20)
              .reverse()
              .map((t) => [
                link(routeOf(["task", t.taskId]), t.taskId),
                stateBadge(t.state),
                t.user,
                t.type,
                t.jobCount,
                progressBar(t),
              ]),
          )
        : message("no tasks yet"),
    );
  };
  const loadCharts = async () => {
    const series = await loadSeries();
    chartsBox.replaceChildren(
      throughputChart(series),
      perSiteChart("Queue depth per site (activated jobs waiting)", series, (s) => s.queued),
    );
  };
  const loadLive = async () => {
    const { jobs } = await getJson<{ jobs: JobRow[] }>(`/api/v1/jobs?limit=${LIVE_ROWS}`);
    liveBody.replaceChildren(
      ...jobs.map((j) => liveRow(j.jobId, j.state, "", Math.max(0, ...Object.values(j.timestamps)), j.site)),
    );
  };
  const reloadSummaries = throttled(() => Promise.all([loadSites(), loadFailures(), loadTasks()]), 1000);
  await Promise.all([loadSites(), loadFailures(), loadTasks(), loadCharts(), loadLive()]);
  const chartTimer = setInterval(() => inBackground(loadCharts), 10_000);

  const applyJobChange = (change: LiveChange) => {
    const existing = liveBody.querySelector<HTMLTableRowElement>(
      `tr[data-job-id="${CSS.escape(change.id)}"]`,
    );
    if (change.refused && existing) return;
    const state = topState(change.to);
    if (existing) {
      fillLiveRow(existing, change.id, state, change.event, change.atMs, null);
      liveBody.prepend(existing);
    } else {
      liveBody.prepend(liveRow(change.id, state, change.event, change.atMs, null));
      if (liveBody.rows.length > LIVE_ROWS) liveBody.lastElementChild?.remove();
    }
    if (change.event === "brokered" || change.event === "dispatch") inBackground(() => fillSite(change.id));
  };
  // Pushed changes carry no site: ask for it once a job has one.
  const fillSite = async (jobId: string) => {
    const job = await getJson<{ context: { site: string | null } }>(
      `/api/v1/actors/job/${encodeURIComponent(jobId)}?history=0`,
    );
    const cell = liveBody.querySelector(`tr[data-job-id="${CSS.escape(jobId)}"] .site`);
    if (cell && job.context.site) cell.textContent = job.context.site;
  };
  return {
    onLive(message) {
      if (message.type === "resync") {
        inBackground(loadLive);
        reloadSummaries();
        return;
      }
      for (const change of message.changes) if (change.kind === "job") applyJobChange(change);
      if (message.changes.some((c) => c.kind === "site" || c.kind === "task")) reloadSummaries();
    },
    dispose() {
      clearInterval(chartTimer);
    },
  };
}
