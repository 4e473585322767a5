/**
 * The V8 heap a simulation runs in. A simulated grid keeps every live job,
 * pilot and queue in one process, and nearly everything a transition leaves
 * outlives a young-generation collection: with Node's default 16 MB
 * semi-spaces it is copied out of them in scavenge after scavenge (a third
 * of the CPU of a grid-2026 run), and a whole day outgrows the default
 * old-space limit. `panda sim` therefore runs the engine in a child Node
 * started with flags sized for it, unless the caller chose them.
 */
import { spawn } from "node:child_process";
import { constants, totalmem } from "node:os";
import { givenNodeFlag } from "./node-flags.js";

/**
 * 256 MB semi-spaces. A scavenge costs what survives it, and a simulated
 * job's objects live for a few scavenges: the larger the young generation,
 * the more of them die in it. 64 MB took a 2-hour grid-2026 run from 304 s
 * of CPU (the default 16) to 241 s; 128 MB then beat 64 (the first 3 hours,
 * pairs at once: 121.6 -> 117.5 and 118.5 -> 112.7 s), and 256 beat 128
 * (192.6 -> 173.7 s of CPU, wall 3:22 -> 3:10, peak RSS 4.0 -> 4.2 GB);
 * 512 ran as 256 did (172.0 against 171.6 s, 0.4 GB more). Summaries
 * identical throughout.
 */
export const SIM_SEMI_SPACE_MB = 256;
/** What of the machine's memory the old space may take: the rest is the OS's and the semi-spaces'. */
const OLD_SPACE_SHARE = 0.75;
/** Set in the child, so it runs the engine rather than starting another. */
const CHILD_MARK = "PANDA_SIM_CHILD";

/** The flags a simulation's Node needs that neither its command line nor NODE_OPTIONS set already. */
export function simHeapFlags(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  totalBytes: number,
): string[] {
  const has = (name: string) => givenNodeFlag(execArgv, nodeOptions, name) !== null;
  const flags: string[] = [];
  if (!has("--max-semi-space-size")) flags.push(`--max-semi-space-size=${SIM_SEMI_SPACE_MB}`);
  if (!has("--max-old-space-size")) {
    const oldSpaceMb = Math.floor((totalBytes / 1_048_576) * OLD_SPACE_SHARE);
    flags.push(`--max-old-space-size=${oldSpaceMb}`);
  }
  return flags;
}

/**
 * Runs `panda sim ARGV` in a child Node with the simulation's heap flags and
 * resolves to its exit code, or resolves to null when this process should
 * run the engine itself (it is that child, or every flag is set already).
 */
export async function runSimInSizedHeap(argv: readonly string[]): Promise<number | null> {
  if (process.env[CHILD_MARK]) return null;
  const flags = simHeapFlags(process.execArgv, process.env.NODE_OPTIONS, totalmem());
  const entry = process.argv[1];
  if (flags.length === 0 || !entry) return null;
  const child = spawn(process.execPath, [...process.execArgv, ...flags, entry, "sim", ...argv], {
    stdio: "inherit",
    env: { ...process.env, [CHILD_MARK]: "1" },
  });
  // Ctrl-C reaches the child from the terminal; a signal sent to this process alone is passed on.
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
