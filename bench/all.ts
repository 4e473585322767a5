/**
 * `npm run bench`: every benchmark, one after another, each in its own
 * process so one's leftovers (connections, timers, heap) cannot skew the next,
 * started with the flags a server node runs with.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SERVER_NODE_FLAGS } from "../src/cli/server-heap.js";

const BENCHES = ["runtime.bench.ts", "dispatch.bench.ts", "gateway.bench.ts"];

let failed = 0;
for (const bench of BENCHES) {
  const path = fileURLToPath(new URL(`./${bench}`, import.meta.url));
  console.log(`\n=== ${bench} ===`);
  const result = spawnSync(process.execPath, [...SERVER_NODE_FLAGS, "--import", "tsx", path], {
    stdio: "inherit",
  });
  if (result.status !== 0) {
    failed++;
    console.error(`${bench} exited with ${result.status ?? result.signal}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
