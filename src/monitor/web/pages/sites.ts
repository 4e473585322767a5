/** The sites page (every site) and one site's page. */
import { getJson, type SiteView } from "../api.js";
import { fmtAgo, fmtTime, h, link, message, section, table } from "../dom.js";
import { throttled } from "../live.js";
import { loadSeries, perSiteChart } from "../series.js";
import { routeOf, type View } from "../view.js";

function perMinute(site: SiteView): number {
  return site.pilotRequests.inWindow / Math.max(1, site.pilotRequests.windowMs / 60_000);
}

function errorsByClass(errors: Partial<Record<string, number>>): string {
  return Object.entries(errors)
    .map(([cls, n]) => [cls, n ?? 0] as const)
    .sort((a, b) => b[1] - a[1])
    .map(([cls, n]) => `${cls} ${n}`)
    .join(", ");
}

function starvedFlag(site: SiteView): HTMLElement | string {
  return site.starved
    ? h(
        "span",
        { class: "flag", title: "jobs are queued here and no pilot asked for work in the last window" },
        "STARVED",
      )
    : "";
}

/** Every site: status, pilots and threads, queues, pilot request rate (red when starved), recent errors. */
export async function sitesPage(root: HTMLElement): Promise<View> {
  const tableBox = h("div", {}, message("loading..."));
  const chartBox = h("div", { class: "charts" });
  root.replaceChildren(
    h("h1", {}, "Sites"),
    tableBox,
    section("Pilot requests per site over time", chartBox),
  );
  const load = async () => {
    const [{ sites }, series] = await Promise.all([
      getJson<{ sites: SiteView[] }>("/api/v1/monitor/sites"),
      loadSeries(),
    ]);
    tableBox.replaceChildren(
      table(
        [
          "site",
          "status",
          "pilots",
          "ready threads",
          "queue (prod/anal)",
          "pilot req/min",
          "last pilot",
          "",
          "recent errors",
        ],
        sites.map((s) => [
          link(routeOf(["site", s.name]), s.name),
          h("span", { class: `status status-${s.status}` }, s.status),
          s.pilots.length,
          s.readyThreads,
          `${s.queueDepth.production} / ${s.queueDepth.analysis}`,
          h("span", { class: s.starved ? "bad" : undefined }, perMinute(s).toFixed(2)),
          fmtAgo(s.pilotRequests.lastSeenAtMs),
          starvedFlag(s),
          errorsByClass(s.recentErrors),
        ]),
        { id: "sites-table" },
      ),
    );
    const windowMin = new Map(sites.map((s) => [s.name, Math.max(1, s.pilotRequests.windowMs / 60_000)]));
    chartBox.replaceChildren(
      ...sites.map((s) =>
        perSiteChart(
          `${s.name}: pilot requests per minute`,
          series,
          (v) => v.pilotRequests / (windowMin.get(s.name) ?? 1),
          s.name,
        ),
      ),
    );
  };
  await load();
  const reload = throttled(load, 2000);
  return {
    onLive(m) {
      if (m.type === "resync" || m.changes.some((c) => c.kind === "site")) reload();
    },
  };
}

export async function sitePage(root: HTMLElement, name: string): Promise<View> {
  const body = h("div", {}, message("loading..."));
  root.replaceChildren(h("h1", {}, "Site ", h("code", {}, name)), body);
  const load = async () => {
    const [{ site }, series] = await Promise.all([
      getJson<{ site: SiteView }>(`/api/v1/monitor/sites/${encodeURIComponent(name)}`),
      loadSeries(),
    ]);
    const windowMin = Math.max(1, site.pilotRequests.windowMs / 60_000);
    body.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "status"),
        h(
          "dd",
          {},
          h("span", { class: `status status-${site.status}` }, site.status),
          ` since ${fmtTime(site.statusInfo.sinceMs)} by ${site.statusInfo.by}: ${site.statusInfo.reason}`,
        ),
        h("dt", {}, "slots"),
        h("dd", {}, site.slots),
        h("dt", {}, "queue depth"),
        h("dd", {}, `${site.queueDepth.production} production, ${site.queueDepth.analysis} analysis`),
        h("dt", {}, "pilot requests"),
        h(
          "dd",
          {},
          `${site.pilotRequests.inWindow} in the last ${windowMin} min (${fmtAgo(site.pilotRequests.lastSeenAtMs)}) `,
          starvedFlag(site),
        ),
        h("dt", {}, "failure %"),
        h(
          "dd",
          {},
          `${site.failurePercent.toFixed(1)}% of ${site.recentJobs} jobs ended in the last ${Math.round(site.failureWindowMs / 60_000)} min`,
        ),
        h("dt", {}, "jobs"),
        h(
          "dd",
          {},
          Object.entries(site.jobs)
            .map(([state, n]) => `${state} ${n}`)
            .join(", ") || "none live",
        ),
        h("dt", {}, "totals"),
        h(
          "dd",
          {},
          link(routeOf(["jobs"], { site: name, state: "finished" }), `${site.totals.finished} finished`),
          ", ",
          link(routeOf(["jobs"], { site: name, state: "failed" }), `${site.totals.failed} failed`),
          `, ${site.totals.cancelled} cancelled, ${site.totals.closed} closed`,
        ),
      ),
      section(
        "Recent errors by class",
        Object.keys(site.recentErrors).length
          ? table(
              ["error class", "jobs"],
              Object.entries(site.recentErrors)
                .sort((a, b) => b[1] - a[1])
                .map(([cls, n]) => [cls, n]),
            )
          : message("no failures in the window"),
      ),
      section(
        `Pilots (${site.pilots.length}, ${site.readyThreads} threads waiting for work)`,
        site.pilots.length
          ? table(
              ["pilot", "threads waiting", "draining"],
              site.pilots.map((p) => [p.pilotId, p.ready.join(", ") || "busy", p.draining ? "yes" : ""]),
            )
          : message("no pilot connected"),
      ),
      section(
        "Over time",
        h(
          "div",
          { class: "charts" },
          perSiteChart("Queue depth", series, (v) => v.queued, name),
          perSiteChart("Running jobs", series, (v) => v.running, name),
          perSiteChart("Pilot requests per minute", series, (v) => v.pilotRequests / windowMin, name),
        ),
      ),
      site.incidents.length
        ? section(
            "Black-hole incidents",
            table(
              ["opened", "closed", "by", "jobs", "failed", "error classes"],
              site.incidents.map((i) => [
                fmtTime(i.openedAtMs),
                fmtTime(i.closedAtMs),
                i.closedBy ?? "open",
                i.jobs,
                i.failed,
                errorsByClass(i.errorClasses),
              ]),
            ),
          )
        : "",
    );
  };
  await load();
  const reload = throttled(load, 2000);
  return {
    onLive(m) {
      if (m.type === "resync" || m.changes.some((c) => c.kind === "site" && c.id === name)) reload();
    },
  };
}
