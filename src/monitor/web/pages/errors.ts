// The errors page: failures per site, class and code over the last 1, 12 and 24 hours, each linking to its jobs.
import { type ErrorRow, getJson } from "../api.js";
import { fmtTime, h, link, message, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";
import { reloadingOn } from "./window.js";

export async function errorsPage(root: HTMLElement, route: Route): Promise<View> {
  const site = route.params.get("site") ?? "";
  const box = h("div", {}, message("loading..."));
  root.replaceChildren(
    h("h1", {}, site ? `Errors at ${site}` : "Errors"),
    h(
      "p",
      { class: "note" },
      "Failed jobs per site, error class and code in the last 1, 12 and 24 hours (whole hours, with the one in progress). ",
      site ? link(routeOf(["errors"]), "every site") : "",
    ),
    box,
  );
  const load = async () => {
    const { errors } = await getJson<{ errors: ErrorRow[] }>(
      `/api/v1/errors${site ? `?site=${encodeURIComponent(site)}` : ""}`,
    );
    box.replaceChildren(
      errors.length === 0
        ? message("no job failed in the last 24 hours")
        : table(
            ["site", "class", "code", "1 h", "12 h", "24 h", "last job", "last hour", "jobs"],
            errors.map((e) => [
              link(routeOf(["errors"], { site: e.site }), e.site),
              e.errorClass,
              e.errorCode || "(none)",
              h("span", { class: e.counts.h1 > 0 ? "bad" : undefined }, e.counts.h1),
              e.counts.h12,
              e.counts.h24,
              link(routeOf(["job", e.lastJobId]), e.lastJobId),
              fmtTime(e.lastHourMs),
              link(
                routeOf(["jobs"], { site: e.site, state: "failed", q: e.errorCode || e.errorClass }),
                "failed jobs",
              ),
            ]),
            { id: "errors", class: "numbers" },
          ),
    );
  };
  await load();
  return reloadingOn(["site"], load);
}
