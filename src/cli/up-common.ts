/**
 * What `panda up` does the same with one node in its own process and with
 * several as child processes: its log lines, the local pilots' specs, the
 * demo once the pilots are there, and the stop on the first signal.
 */
import { join, relative } from "node:path";
import type { PandaClient } from "./client.js";
import { submitDemo } from "./demo.js";
import { LOCAL_SITE_NAMES, type LocalGridPlan } from "./local-grid.js";
import type { PilotSpec } from "./local-pilots.js";
import { clockTime, print } from "./output.js";

/** How long the demo waits for the local pilots to connect before it submits anyway. */
const PILOTS_CONNECT_TIMEOUT_MS = 30_000;
const PILOTS_POLL_MS = 200;

export function say(line: string): void {
  print(`${clockTime()} ${line}`);
}

/** A path as a person in the working directory would type it. */
export function shownPath(path: string): string {
  const fromHere = relative(process.cwd(), path);
  return fromHere === "" || fromHere.startsWith("..") ? path : fromHere;
}

/**
 * `perSite` pilots for each local site. With several nodes (`serverUrls`), the
 * k-th pilot knows them all and starts at node k mod N: the pilots spread
 * over the nodes, and each moves on to the next after a dropped socket.
 */
export function pilotSpecs(
  dataDir: string,
  plan: LocalGridPlan,
  perSite: number,
  serverUrls: readonly string[] = [],
): PilotSpec[] {
  let k = 0;
  return LOCAL_SITE_NAMES.flatMap((site) =>
    Array.from({ length: perSite }, (_, i) => {
      const name = `${site}-${i + 1}`;
      const spec: PilotSpec = {
        name,
        site,
        token: plan.pilotTokenBySite.get(site)!,
        workdir: join(dataDir, "pilots", name),
        logPath: join(dataDir, "logs", `pilot-${name}.log`),
      };
      if (serverUrls.length > 1) {
        const first = k++ % serverUrls.length;
        spec.servers = [...serverUrls.slice(first), ...serverUrls.slice(0, first)].join(",");
      }
      return spec;
    }),
  );
}

/** What the demo asks of the grid before it submits. */
export interface DemoGrid {
  connectedPilots(): Promise<number>;
  /** Tasks the grid already has: a grid brought back from its state keeps what it had. */
  taskCount(): Promise<number>;
}

async function waitForPilots(grid: DemoGrid, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await grid.connectedPilots();
    if (connected >= expected || Date.now() >= deadline) return connected;
    await new Promise((resolve) => setTimeout(resolve, PILOTS_POLL_MS));
  }
}

export async function runDemo(grid: DemoGrid, client: PandaClient, expectedPilots: number): Promise<void> {
  if (expectedPilots > 0) {
    const connected = await waitForPilots(grid, expectedPilots, PILOTS_CONNECT_TIMEOUT_MS);
    say(`${connected}/${expectedPilots} pilots connected`);
  }
  // The demo is for a new grid.
  const earlierTasks = await grid.taskCount();
  if (earlierTasks > 0) {
    say(`demo: not submitted, the grid has ${earlierTasks} task(s) from before`);
    return;
  }
  const demo = await submitDemo(client, Date.now().toString(36));
  say(`demo: dataset ${demo.dataset} at SITE-A`);
  say(`demo: submitted production task ${demo.productionTaskId} (one job per input file)`);
  say(`demo: submitted analysis task ${demo.analysisTaskId} (short jobs)`);
}

/** Submits the demo in the background, saying so if it cannot. */
export function startDemo(grid: DemoGrid, client: PandaClient, expectedPilots: number): void {
  void runDemo(grid, client, expectedPilots).catch((err: unknown) =>
    say(`demo not submitted: ${(err as Error).message}`),
  );
}

/** Resolves with the first SIGINT/SIGTERM; a second one escalates through `onRepeat`. */
export function firstSignal(onRepeat: () => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) return onRepeat();
      received = true;
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
