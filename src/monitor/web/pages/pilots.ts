// Pilots of every node: each site's pilot request rate (red below the threshold, as the seed showed it), connected pilots and threads.
import { getJson, query } from "../api.js";
import { fmtAgo, h, link, message, section, table } from "../dom.js";
import { type Route, routeOf, type View } from "../view.js";
import { reloadingOn } from "./window.js";

interface PilotsAnswer {
  minRequestsPerMin: number;
  nodes: { node: string; atMs: number; pilots: number }[];
  pilots: { pilotId: string; site: string; node: string; ready: string[]; draining: boolean }[];
  sites: {
    site: string;
    connected: number;
    readyThreads: number;
    draining: number;
    dispatchesPerMin: number;
  }[];
  requestRates: {
    site: string;
    status: string;
    requestsPerMin: number;
    windowMs: number;
    lastSeenAtMs: number | null;
    connected: number;
    below: boolean;
  }[];
}

export async function pilotsPage(root: HTMLElement, route: Route): Promise<View> {
  const min = route.params.get("min") ?? "";
  const threshold = h("input", {
    name: "min",
    value: min,
    placeholder: "1",
    size: 5,
    type: "number",
    min: 0,
    step: "any",
  });
  const form = h(
    "form",
    { class: "filters" },
    "red below ",
    threshold,
    " requests per minute ",
    h("button", { type: "submit" }, "apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = routeOf(["pilots"], { min: threshold.value });
  });
  const ratesBox = h("div", {}, message("loading..."));
  const sitesBox = h("div", {});
  const pilotsBox = h("div", {});
  const nodesBox = h("p", { class: "note" });
  root.replaceChildren(
    h("h1", {}, "Pilots"),
    form,
    section("Pilot requests per site", ratesBox),
    section("Connected pilots per site", sitesBox),
    section("Pilots", pilotsBox),
    nodesBox,
  );
  const load = async () => {
    const answer = await getJson<PilotsAnswer>(`/api/v1/pilots${query({ minRequestsPerMin: min })}`);
    ratesBox.replaceChildren(
      answer.requestRates.length === 0
        ? message("no sites are configured")
        : table(
            ["site", "status", "requests/min", "window", "last request", "connected"],
            answer.requestRates.map((r) => [
              link(routeOf(["site", r.site]), r.site),
              h("span", { class: `status status-${r.status}` }, r.status),
              h(
                "span",
                {
                  class: r.below ? "bad low-rate" : undefined,
                  title: r.below ? `below ${answer.minRequestsPerMin}/min` : "",
                },
                r.requestsPerMin,
              ),
              `${Math.round(r.windowMs / 60_000)} min`,
              fmtAgo(r.lastSeenAtMs),
              r.connected,
            ]),
            { id: "pilot-rates", class: "numbers" },
          ),
    );
    sitesBox.replaceChildren(
      answer.sites.length === 0
        ? message("no pilot is connected to any node")
        : table(
            ["site", "pilots", "ready threads", "draining", "pushes/min"],
            answer.sites.map((s) => [s.site, s.connected, s.readyThreads, s.draining, s.dispatchesPerMin]),
            { id: "pilot-sites", class: "numbers" },
          ),
    );
    pilotsBox.replaceChildren(
      answer.pilots.length === 0
        ? message("none")
        : table(
            ["pilot", "site", "node", "ready threads", "draining"],
            answer.pilots.map((p) => [
              p.pilotId,
              p.site,
              p.node,
              p.ready.join(", "),
              p.draining ? "yes" : "",
            ]),
            { id: "pilot-list" },
          ),
    );
    nodesBox.replaceChildren(
      `Answered for ${answer.nodes.length} node(s): `,
      answer.nodes.map((n) => `${n.node} (${n.pilots} pilots, ${fmtAgo(n.atMs)})`).join("; "),
    );
  };
  await load();
  const live = reloadingOn(["site"], load);
  // Other nodes' pilots come through the shared registry, not this node's stream: a timer picks them up.
  const timer = setInterval(() => void load().catch(() => {}), 10_000);
  return { ...live, dispose: () => clearInterval(timer) };
}
