// The seed's production and analysis job summaries: per site, live jobs per state and ended jobs with failures split total / transfer / other.
import { getJson } from "../api.js";
import { h, link, message, section, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";
import { reloadingOn, windowLinks, windowOf } from "./window.js";

type Counts = Partial<Record<string, number>>;

interface LaneRow {
  live: Counts;
  ended: { finished: number; failed: number; closed: number; cancelled: number; transferFailed: number };
  failurePercent: { total: number; transfer: number; other: number };
}

interface JobSummary {
  hours: number;
  sites: ({ site: string; status: string } & Record<"production" | "analysis", LaneRow>)[];
  total: Record<"production" | "analysis", LaneRow>;
}

/** A failure percentage, red from 20% on as a shifter's eye would flag it. */
function pct(value: number): HTMLElement {
  return h("span", { class: value >= 20 ? "bad" : undefined }, `${value}%`);
}

/** A site's live states in lifecycle order: from `assigned` (it has a site) to `transferring` (its last live one). */
function liveStates(states: string[]): string[] {
  return states.slice(states.indexOf("assigned"), states.indexOf("transferring") + 1);
}

function laneTable(
  lane: "production" | "analysis",
  summary: JobSummary,
  liveStateNames: string[],
): HTMLElement {
  const rows = summary.sites.map((s) => ({ name: s.site, status: s.status, row: s[lane] }));
  const cells = (name: string | null, row: LaneRow) => {
    const jobsAt = (state: string) =>
      name ? routeOf(["jobs"], { site: name, state }) : routeOf(["jobs"], { state });
    return [
      ...liveStateNames.map((state) => row.live[state] ?? 0),
      row.ended.finished,
      row.ended.failed > 0 ? link(jobsAt("failed"), row.ended.failed) : 0,
      row.ended.closed,
      row.ended.cancelled,
      pct(row.failurePercent.total),
      pct(row.failurePercent.transfer),
      pct(row.failurePercent.other),
    ];
  };
  return table(
    [
      "site",
      "status",
      ...liveStateNames,
      "finished",
      "failed",
      "closed",
      "cancelled",
      "fail %",
      "transfer %",
      "other %",
    ],
    [
      ...rows.map((r) => [
        link(routeOf(["site", r.name]), r.name),
        h("span", { class: `status status-${r.status}` }, r.status),
        ...cells(r.name, r.row),
      ]),
      [h("strong", {}, "total"), "", ...cells(null, summary.total[lane])],
    ],
    { id: `summary-${lane}`, class: "numbers" },
  );
}

export async function summaryPage(root: HTMLElement, route: Route): Promise<View> {
  const hours = windowOf(route.params, 12);
  const box = h("div", {}, message("loading..."));
  root.replaceChildren(
    h("h1", {}, "Job summary"),
    windowLinks("summary", hours),
    h(
      "p",
      { class: "note" },
      `Live jobs now; finished, failed, closed and cancelled in the last ${hours} h (whole hours, with the one in progress). Failures are split transfer (stage-in, stage-out) and other.`,
    ),
    box,
  );
  const load = async () => {
    const [summary, { states }] = await Promise.all([
      getJson<JobSummary>(`/api/v1/job-summary?hours=${hours}`),
      getJson<{ states: string[] }>("/api/v1/monitor/job-states"),
    ]);
    const live = liveStates(states);
    box.replaceChildren(
      summary.sites.length === 0
        ? message("no sites are configured")
        : h(
            "div",
            {},
            section("Production jobs", laneTable("production", summary, live)),
            section("Analysis jobs", laneTable("analysis", summary, live)),
          ),
    );
  };
  await load();
  return reloadingOn(["job", "site"], load);
}
