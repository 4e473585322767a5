// What a batch job runs: Node 20 fetching the pilot bundle, checking its SHA-256, and running it with the queue's pilot flags.
import type { QueueConfig } from "./config.js";

/** The file the bootstrap writes in the job's directory. */
export const BUNDLE_FILE = "panda-pilot.cjs";
/** Exit codes of the bootstrap itself, beside the pilot's own (0-4, 128+n). */
export const BOOTSTRAP_EXIT = { unreachable: 10, badChecksum: 11 } as const;

/**
 * Runs with `node -e` and nothing else on the worker node. argv: the bundle
 * URL, its expected checksum, then the pilot's flags. Fetches with a few
 * retries, refuses a file whose digest differs, then loads it in this process
 * (one process: the batch system's signals reach the pilot directly).
 */
const BOOTSTRAP = `"use strict";
const [url, want, ...args] = process.argv.slice(1);
const fs = require("node:fs"), path = require("node:path"), crypto = require("node:crypto");
const fail = (code, message) => { console.error("panda bootstrap: " + message); process.exit(code); };
// A fetch whose socket is cut can leave nothing to keep Node running: it would then end with 0, as if the pilot had.
process.exitCode = ${BOOTSTRAP_EXIT.unreachable};
const watchdog = setTimeout(() => fail(${BOOTSTRAP_EXIT.unreachable}, "no pilot from " + url + " within 120 s"), 120000);
(async () => {
  let bytes;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(30000) });
      if (!res.ok) throw new Error("HTTP " + res.status);
      bytes = Buffer.from(await res.arrayBuffer());
      break;
    } catch (err) {
      const why = (err && err.cause && err.cause.code) || (err && err.message) || String(err);
      if (attempt >= 3) fail(${BOOTSTRAP_EXIT.unreachable}, "cannot fetch the pilot from " + url + ": " + why);
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  clearTimeout(watchdog);
  const got = "sha256:" + crypto.createHash("sha256").update(bytes).digest("hex");
  if (got !== want) fail(${BOOTSTRAP_EXIT.badChecksum}, "the pilot from " + url + " is " + got + ", expected " + want + ": not run");
  const file = path.resolve("${BUNDLE_FILE}");
  fs.writeFileSync(file, bytes, { mode: 0o600 });
  process.exitCode = undefined;
  process.argv = [process.argv[0], file, ...args];
  require(file);
})();`;

export interface LaunchTarget {
  /** The Node binary on the worker node. */
  node: string;
  /** The server as pilots reach it. */
  server: string;
  /** `sha256:<hex>` of the bundle the server serves now. */
  checksum: string;
}

/** The command line of one pilot of `queue`: the bootstrap, then `panda pilot`'s flags. */
export function pilotArgv(target: LaunchTarget, queue: QueueConfig): string[] {
  const bundleUrl = `${target.server.replace(/\/+$/, "")}/pilot/bundle`;
  const flags = [
    "--server",
    target.server,
    "--site",
    queue.site,
    "--workdir",
    ".",
    "--walltime",
    String(queue.walltimeSec),
    "--stay",
    "--idle-timeout",
    String(queue.pilot.idleTimeoutSec),
    "--call-home-timeout",
    String(queue.pilot.callHomeTimeoutSec),
    ...(queue.pilot.multitask ? ["--multitask"] : []),
    ...(queue.pilot.maxJobs === undefined ? [] : ["--max-jobs", String(queue.pilot.maxJobs)]),
  ];
  return [target.node, "-e", BOOTSTRAP, "--", bundleUrl, target.checksum, ...flags];
}
