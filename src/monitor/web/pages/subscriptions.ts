// Subscriptions and dispatch blocks: what each brings to which site, its state and its progress in files and bytes.
import { getJson, query } from "../api.js";
import { fmtBytes, fmtTime, h, link, message, stateBadge, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";
import { reloadingOn } from "./window.js";

interface SubscriptionRow {
  id: string;
  state: string;
  dataset: string;
  site: string;
  purpose: string;
  requester: unknown;
  progress: { files: number; filesDone: number; bytes: number; bytesDone: number };
  failure: { message?: string } | string | null;
  timestamps: Record<string, number>;
}

const PURPOSES = ["", "dispatch", "replication", "output"];
const STATES = ["", "requested", "transferring", "done", "failed", "cancelled"];
const LIMIT = 200;

function progressCell(p: SubscriptionRow["progress"]): HTMLElement {
  const percent = p.files === 0 ? 100 : Math.round((100 * p.filesDone) / p.files);
  return h(
    "div",
    { class: "progress", title: `${fmtBytes(p.bytesDone)} of ${fmtBytes(p.bytes)}` },
    h("span", { class: "seg seg-finished", style: `width:${percent}%` }),
    h("em", {}, `${p.filesDone}/${p.files} files, ${percent}%`),
  );
}

function failureText(failure: SubscriptionRow["failure"]): string {
  if (!failure) return "";
  return typeof failure === "string" ? failure : (failure.message ?? JSON.stringify(failure));
}

export async function subscriptionsPage(root: HTMLElement, route: Route): Promise<View> {
  const filters = {
    purpose: route.params.get("purpose") ?? "",
    state: route.params.get("state") ?? "",
    site: route.params.get("site") ?? "",
  };
  const select = (name: "purpose" | "state", options: string[]) =>
    h(
      "select",
      {
        name,
        onchange: (event: Event) => {
          const value = (event.target as HTMLSelectElement).value;
          location.hash = routeOf(["subscriptions"], { ...filters, [name]: value });
        },
      },
      ...options.map((o) => h("option", { value: o, selected: o === filters[name] }, o || `any ${name}`)),
    );
  const box = h("div", {}, message("loading..."));
  root.replaceChildren(
    h("h1", {}, "Subscriptions and dispatch blocks"),
    h("form", { class: "filters" }, select("purpose", PURPOSES), select("state", STATES)),
    box,
  );
  const load = async () => {
    const { subscriptions } = await getJson<{ subscriptions: SubscriptionRow[] }>(
      `/api/v1/subscriptions${query({ ...filters, limit: LIMIT })}`,
    );
    box.replaceChildren(
      subscriptions.length === 0
        ? message("no subscription matches")
        : h(
            "div",
            {},
            h("p", { class: "note" }, `the newest ${subscriptions.length} (at most ${LIMIT})`),
            table(
              [
                "subscription",
                "purpose",
                "dataset",
                "site",
                "state",
                "progress",
                "requested",
                "ended",
                "failure",
              ],
              subscriptions.map((s) => [
                h("a", { href: `/api/v1/subscriptions/${encodeURIComponent(s.id)}` }, s.id),
                s.purpose,
                s.purpose === "dispatch" ? s.dataset : link(routeOf(["dataset", s.dataset]), s.dataset),
                link(routeOf(["site", s.site]), s.site),
                stateBadge(s.state),
                progressCell(s.progress),
                fmtTime(s.timestamps.requested),
                fmtTime(s.timestamps.done ?? s.timestamps.failed ?? s.timestamps.cancelled),
                h("span", { class: "bad" }, failureText(s.failure)),
              ]),
              { id: "subscriptions" },
            ),
          ),
    );
  };
  await load();
  return reloadingOn(["subscription"], load);
}
