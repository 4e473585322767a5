/**
 * The server code a benchmark runs: the build in dist/, as `panda server`
 * runs it (the npm bench scripts build first), or src/ through tsx with
 * PANDA_BENCH_SOURCE=1. tsx compiles with esbuild's keepNames, which wraps
 * every function created at run time in a naming call; dist/ is what users
 * run, so it is what the figures are of.
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

type ServerModule = typeof import("../../src/server/server.js");

export function benchRunsSource(): boolean {
  return process.env.PANDA_BENCH_SOURCE === "1";
}

export async function serverModule(): Promise<ServerModule> {
  if (benchRunsSource()) return import("../../src/server/server.js");
  const built = fileURLToPath(new URL("../../dist/server/server.js", import.meta.url));
  const source = fileURLToPath(new URL("../../src/server/server.ts", import.meta.url));
  if (!existsSync(built)) {
    throw new Error(
      "dist/ is not built: run `npm run build` (the npm bench scripts do), or PANDA_BENCH_SOURCE=1",
    );
  }
  if (statSync(built).mtimeMs < statSync(source).mtimeMs) {
    console.warn(
      "bench: dist/ is older than src/server/server.ts; `npm run build` first for figures of this code",
    );
  }
  return (await import(built)) as ServerModule;
}
