/** Bundles the monitor's browser app (`web/`) into the directory the server serves it from. */
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { MONITOR_BUNDLE_DIR } from "../server/monitor-page.js";

/**
 * Bundles the browser side of the monitor (src/monitor/web) into one script
 * and one stylesheet. Runs in `npm run build`, so nothing is built or fetched
 * while the server runs.
 */
export async function bundleMonitor(outdir = MONITOR_BUNDLE_DIR): Promise<void> {
  await build({
    // From the package root, so this works compiled into dist/ as well as from src/.
    entryPoints: { app: fileURLToPath(new URL("../../src/monitor/web/main.ts", import.meta.url)) },
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    outdir,
    logLevel: "warning",
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundleMonitor();
