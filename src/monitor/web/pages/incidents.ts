// The incident log: searchable by text, site and source, newest first, each linking to its job and site.
import { getJson, query } from "../api.js";
import { fmtTime, h, link, message, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";

interface Incident {
  id: string;
  atMs: number;
  source: string;
  level: string;
  message: string;
  site: string | null;
  jobId: string | null;
  errorClass: string | null;
  errorCode: string | null;
  reporter: string;
}

const FIELDS = ["q", "site", "source"] as const;
const SOURCES = ["", "site", "pilot", "server", "factory"];

export async function incidentsPage(root: HTMLElement, route: Route): Promise<View> {
  const value = (name: string) => route.params.get(name) ?? "";
  const inputs = {
    q: h("input", { name: "q", value: value("q"), placeholder: "search message, job, code...", size: 28 }),
    site: h("input", { name: "site", value: value("site"), placeholder: "site", size: 12 }),
    source: h(
      "select",
      { name: "source" },
      ...SOURCES.map((s) => h("option", { value: s, selected: s === value("source") }, s || "any source")),
    ),
  };
  const form = h(
    "form",
    { class: "filters" },
    inputs.q,
    inputs.site,
    inputs.source,
    h("button", { type: "submit" }, "search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = routeOf(["incidents"], Object.fromEntries(FIELDS.map((f) => [f, inputs[f].value])));
  });
  inputs.source.addEventListener("change", () => form.requestSubmit());
  const box = h("div", {}, message("loading..."));
  root.replaceChildren(h("h1", {}, "Incidents"), form, box);
  const load = async () => {
    const { incidents } = await getJson<{ incidents: Incident[] }>(
      `/api/v1/incidents${query({ q: value("q"), site: value("site"), source: value("source"), limit: 200 })}`,
    );
    box.replaceChildren(
      incidents.length === 0
        ? message("no incident matches")
        : table(
            ["time", "level", "source", "site", "job", "class", "code", "message", "reporter"],
            incidents.map((i) => [
              fmtTime(i.atMs),
              h("span", { class: i.level === "error" ? "bad" : undefined }, i.level),
              i.source,
              i.site ? link(routeOf(["site", i.site]), i.site) : "",
              i.jobId ? link(routeOf(["job", i.jobId]), i.jobId) : "",
              i.errorClass ?? "",
              i.errorCode ?? "",
              i.message,
              i.reporter,
            ]),
            { id: "incidents" },
          ),
    );
  };
  await load();
  // Incidents are not actors: a new one comes with a change of the site or job it is about; a timer catches the rest.
  const timer = setInterval(() => void load().catch(() => {}), 15_000);
  return { dispose: () => clearInterval(timer) };
}
