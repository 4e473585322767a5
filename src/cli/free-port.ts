/**
 * Free local ports for servers this process starts (redis-server, cluster
 * nodes): `panda up --redis-cluster` and the tests pick them the same way.
 */
import { createServer } from "node:net";

/** Redis Cluster talks node-to-node on the client port plus this offset. */
export const CLUSTER_BUS_PORT_OFFSET = 10_000;

// Below Linux's ephemeral range (32768+), so outgoing connections do not take our picks meanwhile.
const LOWEST_PORT = 20_000;
const PORT_SPAN = 12_000;
const ATTEMPTS = 100;

/** Whether nothing listens on `port` on any interface, the way redis-server binds. */
function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port that is free at this moment (and, for a cluster node, whose bus port
 * is free too). Random rather than sequential so that test files starting
 * servers in parallel rarely pick the same one; the caller retries if it does.
 */
export async function freePort(options: { withClusterBus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * PORT_SPAN);
    if (!(await isPortFree(port))) continue;
    if (options.withClusterBus && !(await isPortFree(port + CLUSTER_BUS_PORT_OFFSET))) continue;
    return port;
  }
  throw new Error(`no free port after ${ATTEMPTS} attempts`);
}
