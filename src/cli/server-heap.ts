/**
 * The young generation a server node runs with. A job's objects (its
 * context, records, frames and queue entries) live for the job's few
 * seconds: far longer than V8's default 16 MB semi-spaces last at a few
 * thousand jobs a second (a scavenge every ~50 ms), so each is copied by
 * scavenges and promoted, and V8's helper threads, mostly collecting,
 * took about a third of the node's CPU in the dispatch benchmark's batch
 * (perf, per thread). Larger semi-spaces let more of it die young. Node
 * reads the size only at start, so `bin/panda.js` passes it on its `#!`
 * line (and every `panda` child started from it inherits it); a node
 * started some other way gets a warning with the flag to add.
 *
 * 64 MB: batches of 10,000 jobs, node CPU ms per job, two runs each:
 * default 0.44 and 0.46, 32 MB 0.41 and 0.37, 64 MB 0.36 and 0.36,
 * 128 MB 0.39 and 0.36, 256 MB 0.39 and 0.35 (docs/performance.md).
 */
import { givenNodeFlag } from "./node-flags.js";

export const SERVER_SEMI_SPACE_MB = 64;

/** The flags a server node's Node is started with (`bin/panda.js`'s `#!` line spells them out too). */
export const SERVER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${SERVER_SEMI_SPACE_MB}`];

/** What to tell the operator of a server node whose Node (this process's, by default) was started without a young generation size; null when it has one. */
export function youngGenerationAdvice(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): string | null {
  if (givenNodeFlag(execArgv, nodeOptions, "--max-semi-space-size") !== null) return null;
  return (
    `this server node's Node was started without --max-semi-space-size: V8's default young generation ` +
    `costs about a fifth more CPU per job; start it with ${SERVER_NODE_FLAGS.join(" ")} ` +
    `(as bin/panda.js does) or set it in NODE_OPTIONS`
  );
}
