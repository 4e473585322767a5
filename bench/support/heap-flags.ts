/** The young generation a benchmark's process runs with, said in its header: the node CPU per job depends on it. */
import { givenNodeFlag } from "../../src/cli/node-flags.js";
import { SERVER_NODE_FLAGS } from "../../src/cli/server-heap.js";

export function heapFlagsLine(): string {
  const semiSpace = givenNodeFlag(process.execArgv, process.env.NODE_OPTIONS, "--max-semi-space-size");
  return semiSpace
    ? `Node ${process.version} with ${semiSpace} (both systems share this process)`
    : `Node ${process.version} WITHOUT the server node's ${SERVER_NODE_FLAGS.join(" ")} (npm run bench:dispatch gives it)`;
}
