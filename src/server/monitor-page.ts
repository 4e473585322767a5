/**
 * The web monitor as this node serves it: one HTML page and the bundle
 * `npm run build` makes, nothing from elsewhere, so a monitor works wherever
 * the node runs, offline included.
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where `npm run build` puts the browser bundle (src/monitor/bundle.ts); the
 * same place whether the server runs from src/ or dist/. This module must not
 * import the bundler: esbuild is a build-time tool, absent from production installs.
 */
export const MONITOR_BUNDLE_DIR = fileURLToPath(new URL("../../dist/monitor/assets/", import.meta.url));

const ASSETS: Record<string, string> = {
  "/monitor/app.js": "text/javascript; charset=utf-8",
  "/monitor/app.js.map": "application/json; charset=utf-8",
  "/monitor/app.css": "text/css; charset=utf-8",
  "/monitor/app.css.map": "application/json; charset=utf-8",
};

/**
 * The monitor's one HTML page: the bundled app (built by `npm run build`)
 * draws every view into it and moves between views by the URL's fragment,
 * so nothing reloads and nothing is fetched from outside this node.
 */
export function renderMonitor(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>panda-actors monitor</title><link rel="stylesheet" href="/monitor/app.css"></head>
<body><header id="top"></header><main id="view"><p>Loading...</p></main>
<noscript>The monitor needs JavaScript.</noscript>
<script type="module" src="/monitor/app.js"></script></body></html>`;
}

/** Serves `/` and the bundle under `/monitor/`; false for anything else. */
export function serveMonitor(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "GET") return false;
  const path = (req.url ?? "/").split("?")[0]!;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
    res.end(renderMonitor());
    return true;
  }
  const type = ASSETS[path];
  if (!type) return false;
  readFile(join(MONITOR_BUNDLE_DIR, path.slice("/monitor/".length))).then(
    (body) => {
      res.writeHead(200, { "content-type": type, "cache-control": "no-cache" });
      res.end(body);
    },
    () => {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      res.end("the monitor is not built: run `npm run build`\n");
    },
  );
  return true;
}
