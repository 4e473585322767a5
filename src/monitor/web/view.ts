/** The browser app's page contract: a route, a page that renders into a root, the view it returns. */
import type { LiveMessage } from "./live.js";

/** A page on screen: it hears pushed changes while shown and lets go of timers when left. */
export interface View {
  onLive?(message: LiveMessage): void;
  dispose?(): void;
}

export interface Route {
  /** The fragment's path split on `/`, decoded: `#/job/t-0.1` is ["job", "t-0.1"]. */
  path: string[];
  params: URLSearchParams;
}

export type Page = (root: HTMLElement, route: Route) => Promise<View> | View;

export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#\/?/, "").split("?");
  return {
    path: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(search),
  };
}

export function routeOf(path: string[], params: Record<string, string | number | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") search.set(k, String(v));
  const text = search.toString();
  return `/${path.map(encodeURIComponent).join("/")}${text ? `?${text}` : ""}`;
}
