/** The jobs page: a filtered listing of jobs. */
import { getJson, type JobRow, query } from "../api.js";
import { fmtTime, h, link, message, stateBadge, table } from "../dom.js";
import { throttled } from "../live.js";
import { type Route, routeOf, type View } from "../view.js";

const PAGE_SIZE = 50;
const FILTERS = ["state", "site", "task", "user", "q"] as const;

function matchesText(job: JobRow, text: string): boolean {
  const needle = text.toLowerCase();
  return [
    job.jobId,
    job.taskId,
    job.site ?? "",
    job.user,
    job.error?.message ?? "",
    job.error?.class ?? "",
    job.error?.code ?? "",
  ].some((f) => f.toLowerCase().includes(needle));
}

/** The job list: state, site and task filter on the server; user and free text here; pages of fifty. */
export async function jobsPage(root: HTMLElement, route: Route): Promise<View> {
  const value = (name: string) => route.params.get(name) ?? "";
  const { states } = await getJson<{ states: string[] }>("/api/v1/monitor/job-states");
  const page = Math.max(1, Number(route.params.get("page") ?? 1));
  const inputs = Object.fromEntries(
    FILTERS.map((name) => [
      name,
      name === "state"
        ? h(
            "select",
            { name },
            ...["", ...states].map((s) =>
              h("option", { value: s, selected: s === value("state") }, s || "any state"),
            ),
          )
        : h("input", {
            name,
            value: value(name),
            placeholder: name === "q" ? "search id, error..." : name,
            size: name === "q" ? 24 : 12,
          }),
    ]),
  ) as Record<(typeof FILTERS)[number], HTMLInputElement | HTMLSelectElement>;
  const form = h(
    "form",
    { class: "filters" },
    ...FILTERS.map((f) => inputs[f]),
    h("button", { type: "submit" }, "filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = routeOf(["jobs"], Object.fromEntries(FILTERS.map((f) => [f, inputs[f].value])));
  });
  inputs.state.addEventListener("change", () => form.requestSubmit());
  const results = h("div", {}, message("loading..."));
  root.replaceChildren(h("h1", {}, "Jobs"), form, results);

  const load = async () => {
    const { jobs } = await getJson<{ jobs: JobRow[] }>(
      `/api/v1/jobs${query({ state: value("state"), site: value("site"), task: value("task"), limit: 10_000 })}`,
    );
    const filtered = jobs.filter(
      (j) => (!value("user") || j.user === value("user")) && (!value("q") || matchesText(j, value("q"))),
    );
    const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
    const shown = filtered.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
    const pageLink = (p: number, text: string) =>
      p >= 1 && p <= pages && p !== page
        ? link(routeOf(["jobs"], { ...Object.fromEntries(FILTERS.map((f) => [f, value(f)])), page: p }), text)
        : h("span", { class: "muted" }, text);
    results.replaceChildren(
      h(
        "p",
        { class: "pager" },
        `${filtered.length} jobs, page ${page} of ${pages} `,
        pageLink(page - 1, "< previous"),
        " ",
        pageLink(page + 1, "next >"),
      ),
      shown.length
        ? table(
            ["job", "task", "attempt", "state", "site", "user", "type", "updated", "error"],
            shown.map((j) => [
              link(routeOf(["job", j.jobId]), j.jobId),
              link(routeOf(["task", j.taskId]), j.taskId),
              j.attempt,
              stateBadge(j.state),
              j.site ? link(routeOf(["site", j.site]), j.site) : "",
              j.user,
              j.type,
              fmtTime(Math.max(0, ...Object.values(j.timestamps))),
              j.error
                ? h("span", { class: "bad" }, `${j.error.class}/${j.error.code}: ${j.error.message}`)
                : "",
            ]),
            { id: "jobs-table" },
          )
        : message("no jobs match"),
    );
  };
  await load();
  const reload = throttled(load, 2000);
  return {
    onLive(m) {
      if (m.type === "resync" || m.changes.some((c) => c.kind === "job")) reload();
    },
  };
}
