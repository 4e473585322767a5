// The 1 / 12 / 24 hour choice the job summary and the errors page share, and their reload on live changes.
import { h, link } from "../dom.js";
import { type LiveMessage, throttled } from "../live.js";
import { routeOf, type View } from "../view.js";

export const WINDOWS_HOURS = [1, 12, 24] as const;

/** The window in the route, or `fallback` when it names none of the three. */
export function windowOf(params: URLSearchParams, fallback: number): number {
  const hours = Number(params.get("hours"));
  return (WINDOWS_HOURS as readonly number[]).includes(hours) ? hours : fallback;
}

/** Links to the page in each window, the current one marked. */
export function windowLinks(page: string, current: number, params: Record<string, string> = {}): HTMLElement {
  return h(
    "p",
    { class: "windows" },
    "window: ",
    ...WINDOWS_HOURS.flatMap((hours) => [
      link(routeOf([page], { ...params, hours }), `${hours} h`, {
        class: hours === current ? "active" : undefined,
      }),
      " ",
    ]),
  );
}

/** A view that reloads (at most every 2 s) when actors of these kinds change, and on resync. */
export function reloadingOn(kinds: string[], load: () => Promise<unknown>): View {
  const reload = throttled(load, 2000);
  return {
    onLive(m: LiveMessage) {
      if (m.type === "resync" || m.changes.some((c) => kinds.includes(c.kind))) reload();
    },
  };
}
