/** The datasets page (the catalog) and one dataset's page (files, replicas). */
import { type ActorView, getJson, query } from "../api.js";
import { fmtBytes, fmtTime, h, link, message, section, stateBadge, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";

/** A row of `GET /api/v1/datasets` (the API's catalog of datasets). */
interface DatasetRow {
  name: string;
  state: string;
  fileCount: number;
  totalBytes: number;
  sites: string[];
}

const LIMIT = 500;

/** Datasets by wildcard over their names (`*` any run, `?` one character). */
export async function datasetsPage(root: HTMLElement, route: Route): Promise<View> {
  const pattern = route.params.get("pattern") ?? "*";
  const input = h("input", {
    name: "pattern",
    value: pattern,
    size: 40,
    placeholder: "user.alice.* or *.sub.SITE-?",
  });
  const form = h("form", { class: "filters" }, input, h("button", { type: "submit" }, "search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = routeOf(["datasets"], { pattern: input.value || "*" });
  });
  const results = h("div", {}, message("searching..."));
  root.replaceChildren(h("h1", {}, "Datasets"), form, results);
  const { datasets } = await getJson<{ datasets: DatasetRow[] }>(
    `/api/v1/datasets${query({ pattern, limit: LIMIT })}`,
  );
  results.replaceChildren(
    datasets.length === LIMIT ? message(`showing the first ${LIMIT} matches: narrow the pattern`) : "",
    datasets.length
      ? table(
          ["dataset", "state", "files", "size", "replicas at"],
          datasets.map((d) => [
            link(routeOf(["dataset", d.name]), d.name),
            stateBadge(d.state),
            d.fileCount,
            fmtBytes(d.totalBytes),
            h(
              "span",
              {},
              ...d.sites.flatMap((site, i) => [i ? ", " : "", link(routeOf(["site", site]), site)]),
            ),
          ]),
        )
      : message(`no dataset matches ${pattern}`),
  );
  return {};
}

interface DatasetContext {
  name: string;
  parent: string | null;
  files: Record<string, { sizeBytes: number; checksum: string }>;
  fileCount: number;
  totalBytes: number;
  replicas: Record<string, string[]>;
  timestamps: Record<string, number>;
}

export async function datasetPage(root: HTMLElement, name: string): Promise<View> {
  const view = await getJson<ActorView<DatasetContext>>(
    `/api/v1/actors/dataset/${encodeURIComponent(name)}?history=0`,
  );
  const ds = view.context;
  const sitesOf = new Map<string, string[]>();
  for (const [site, lfns] of Object.entries(ds.replicas))
    for (const lfn of lfns) sitesOf.set(lfn, [...(sitesOf.get(lfn) ?? []), site]);
  root.replaceChildren(
    h("h1", {}, "Dataset ", h("code", {}, name)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "state"),
      h("dd", {}, stateBadge(view.state)),
      h("dt", {}, "files"),
      h("dd", {}, `${ds.fileCount} (${fmtBytes(ds.totalBytes)})`),
      h("dt", {}, "parent"),
      h("dd", {}, ds.parent ? link(routeOf(["dataset", ds.parent]), ds.parent) : "none"),
      ...Object.entries(ds.timestamps).flatMap(([state, at]) => [
        h("dt", {}, state),
        h("dd", {}, fmtTime(at)),
      ]),
    ),
    section(
      "Replicas",
      table(
        ["site", "files held", "complete"],
        Object.entries(ds.replicas).map(([site, lfns]) => [
          link(routeOf(["site", site]), site),
          lfns.length,
          lfns.length === ds.fileCount ? "yes" : "no",
        ]),
      ),
    ),
    section(
      "Files",
      table(
        ["lfn", "size", "checksum", "replicas"],
        Object.entries(ds.files).map(([lfn, f]) => [
          lfn,
          fmtBytes(f.sizeBytes),
          h("code", {}, f.checksum),
          (sitesOf.get(lfn) ?? []).join(", "),
        ]),
      ),
    ),
  );
  return {};
}
