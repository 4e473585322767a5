#!/usr/bin/env -S node --max-semi-space-size=64
// The `panda` command: runs the compiled CLI (built by `npm install` / `npm run build`).
// The #! line gives a server node its young generation (src/cli/server-heap.ts: Node reads it only at start).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("panda: the CLI is not built yet; run `npm run build` (npm install does it for you)");
  process.exit(1);
}
await import(entry.href);
