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
  return builtModule<ServerModule>("server/server");
}

type GridModule = typeof import("../../src/workload/grid.js");
type RedisStoreModule = typeof import("../../src/store/redis-store.js");
type RedisQueueIndexModule = typeof import("../../src/store/redis-queue-index.js");

/** The grid and its Redis store and queue index, from the same code as `serverModule`. */
export async function gridModules(): Promise<[GridModule, RedisStoreModule, RedisQueueIndexModule]> {
  if (benchRunsSource())
    return Promise.all([
      import("../../src/workload/grid.js"),
      import("../../src/store/redis-store.js"),
      import("../../src/store/redis-queue-index.js"),
    ]);
  return Promise.all([
    builtModule<GridModule>("workload/grid"),
    builtModule<RedisStoreModule>("store/redis-store"),
    builtModule<RedisQueueIndexModule>("store/redis-queue-index"),
  ]);
}

/** `dist/<path>.js`, warning when it is older than `src/<path>.ts`. */
async function builtModule<M>(path: string): Promise<M> {
  const built = fileURLToPath(new URL(`../../dist/${path}.js`, import.meta.url));
  const source = fileURLToPath(new URL(`../../src/${path}.ts`, import.meta.url));
  if (!existsSync(built)) {
    throw new Error(
      "dist/ is not built: run `npm run build` (the npm bench scripts do), or PANDA_BENCH_SOURCE=1",
    );
  }
  if (statSync(built).mtimeMs < statSync(source).mtimeMs) {
    console.warn(
      `bench: dist/ is older than src/${path}.ts; \`npm run build\` first for figures of this code`,
    );
  }
  return (await import(built)) as M;
}
