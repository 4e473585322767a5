// Builds the self-contained pilot: one CommonJS file that runs on Node 20 with nothing installed beside it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { PILOT_BUNDLE_PATH } from "../server/pilot-bundle.js";

/**
 * Bundles the pilot (its protocol, zod, ws, msgpackr) into `outfile`. Runs
 * in `npm run build`; the server serves the file at /pilot/bundle and never
 * builds it itself (esbuild is absent from production installs).
 */
export async function bundlePilot(outfile = PILOT_BUNDLE_PATH): Promise<void> {
  const packageJson = new URL("../../package.json", import.meta.url);
  const version = (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
  await build({
    // From the package root, so this works compiled into dist/ as well as from src/.
    entryPoints: [fileURLToPath(new URL("../../src/pilot/bundle-main.ts", import.meta.url))],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: true,
    // Optional native speed-ups of msgpackr and ws: both fall back to JavaScript without them.
    external: ["msgpackr-extract", "bufferutil", "utf-8-validate"],
    define: { __PANDA_VERSION__: JSON.stringify(version) },
    logOverride: { "empty-import-meta": "silent" },
    logLevel: "warning",
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundlePilot();
