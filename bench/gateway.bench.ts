/**
 * `npm run bench:gateway`: the pilot gateway's own CPU per pilot frame. A
 * real PilotGateway on port 0 whose handlers resolve at once (a `pilot.ready`
 * is answered with a `job.push`, everything else only acknowledged) and
 * PANDA_BENCH_PILOTS (200) protocol-level pilots over real WebSockets in a
 * process of their own (bench/support/pilot-swarm.ts), each reporting a
 * job's whole lifecycle (job.ack, starting, running, job.ended, pilot.ready:
 * 5 frames) in one write as soon as the push arrives. What is measured is
 * this process's CPU (the gateway, ws, msgpack, zod, the handlers' trivial
 * work) per pilot frame handled, and the server frames each job costs.
 *
 * Variants run interleaved, one leg of each per round, so a machine whose
 * speed drifts minute to minute shifts them all alike:
 *  - `v1`, `v2`: this tree's gateway, pilots speaking that protocol version
 *    (v2: a job's five reports acknowledged by one ack, v1: by five);
 *  - `base v1`, `base v2` with PANDA_BENCH_AGAINST=<git ref>: the gateway of
 *    that commit (its src/ taken with `git archive`), pilots of each version
 *    it speaks: the before of a change.
 * Both trees are bundled by esbuild the same way (no keepNames wrappers, as
 * tsx would add), so their figures compare.
 *
 * PANDA_BENCH_ROUNDS (3), PANDA_BENCH_SECONDS (3, measured per leg after
 * PANDA_BENCH_WARMUP_SECONDS, 1), PANDA_BENCH_PILOTS (200),
 * PANDA_BENCH_VERSIONS (the versions to run, of each tree that speaks
 * them; default every one: 1,2). Figures only: nothing here asserts a speed.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type {
  GatewayHandlers,
  PilotGateway,
  PilotSession,
  ServerMessageInput,
} from "../src/gateway/index.js";
import { PilotSwarm } from "./support/pilot-swarm-client.js";
import { formatTable } from "./support/stats.js";

const ROUNDS = Number(process.env.PANDA_BENCH_ROUNDS ?? 3);
const MEASURE_MS = Number(process.env.PANDA_BENCH_SECONDS ?? 3) * 1000;
const WARMUP_MS = Number(process.env.PANDA_BENCH_WARMUP_SECONDS ?? 1) * 1000;
const PILOTS = Number(process.env.PANDA_BENCH_PILOTS ?? 200);
const AGAINST = process.env.PANDA_BENCH_AGAINST;

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Bundles live under node_modules so that their bare imports (ws, zod, msgpackr) resolve. */
const BUNDLE_DIR = join(REPO_ROOT, "node_modules/.cache/panda-bench-gateway");
const SITE = "BENCH";
const TOKEN = "bench-token";

type GatewayModule = typeof import("../src/gateway/index.js");

/** A tree's gateway and the protocol versions it speaks (1 alone before there were versions). */
interface GatewayBuild {
  module: GatewayModule;
  versions: readonly number[];
}

interface Variant {
  name: string;
  module: GatewayModule;
  /** The protocol version its pilots speak. */
  version: number;
}

interface Leg {
  variant: string;
  round: number;
  jobs: number;
  pilotFrames: number;
  serverFrames: number;
  cpuUs: number;
  ms: number;
}

/** A source tree's gateway (and its protocol's versions) as one ES module, built as every variant is. */
async function bundleGateway(sourceRoot: string, label: string): Promise<GatewayBuild> {
  mkdirSync(BUNDLE_DIR, { recursive: true });
  const outfile = join(BUNDLE_DIR, `gateway-${label}.mjs`);
  await build({
    stdin: {
      contents: [
        'export * from "./src/gateway/index.ts";',
        'export * as protocol from "./src/protocol/messages.ts";',
      ].join("\n"),
      resolveDir: sourceRoot,
      loader: "ts",
    },
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
  });
  const module = (await import(`${outfile}?${Date.now()}`)) as GatewayModule & {
    protocol: { PROTOCOL_VERSIONS?: readonly number[] };
  };
  return { module, versions: module.protocol.PROTOCOL_VERSIONS ?? [1] };
}

/** The src/ of a commit, in a temporary directory (removed by the caller). */
function sourceAt(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), "panda-bench-gateway-"));
  const archive = execFileSync("git", ["archive", "--format=tar", ref, "src"], {
    cwd: REPO_ROOT,
    maxBuffer: 256 * 1024 * 1024,
  });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  return dir;
}

/** Handlers that cost next to nothing: the gateway is what is measured. */
class TrivialHandlers {
  pilotFrames = 0;
  jobs = 0;
  private nextJob = 0;

  readonly handlers: GatewayHandlers = {
    authenticate: async (token) => (token === TOKEN ? { site: SITE, tokenId: "bench" } : null),
    onHello: async () => {
      this.pilotFrames++;
      return [];
    },
    onMessage: async (session, message) => {
      this.pilotFrames++;
      if (message.type === "pilot.ready") this.push(session, message.thread);
    },
    onDisconnect: () => {},
  };

  private push(session: PilotSession, thread: "primary" | "secondary"): void {
    const jobId = `job-${++this.nextJob}`;
    this.jobs++;
    session.push(jobPush(jobId, thread));
  }
}

/** A job push of a realistic size: one input, one output, a command line and an environment. */
function jobPush(jobId: string, thread: "primary" | "secondary"): ServerMessageInput {
  return {
    type: "job.push",
    thread,
    job: {
      jobId,
      attempt: 1,
      taskId: "task-00042",
      type: "production",
      command: ["./run.sh", "--events", "1000", "--output", `${jobId}.root`],
      env: { ATHENA_CORE_NUMBER: "1" },
      walltimeSec: 3600,
      inputs: [
        {
          lfn: `EVNT.${jobId}.pool.root`,
          sizeBytes: 104_857_600,
          checksum: "adler32:0a1b2c3d",
          url: `http://se.bench.example/storage/${SITE}/EVNT.${jobId}.pool.root`,
        },
      ],
      uploadUrl: `http://se.bench.example/storage/${SITE}`,
      outputs: [`${jobId}.root`],
    },
  };
}

async function startServer(module: GatewayModule, handlers: GatewayHandlers) {
  const gateway: PilotGateway = new module.PilotGateway({
    handlers,
    resumeSecret: Buffer.alloc(32, 7),
    // The pilots send as fast as the gateway answers: no rate limit in the way.
    ratePerSec: 1e9,
    burst: 1e9,
  });
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on("upgrade", (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/pilot`,
    stop: async () => {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function cpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function runLeg(variant: Variant, round: number): Promise<Leg> {
  const trivial = new TrivialHandlers();
  const server = await startServer(variant.module, trivial.handlers);
  let serverFrames = 0;
  const swarm = await PilotSwarm.start(
    { url: server.url, token: TOKEN, pilots: PILOTS, site: SITE, version: variant.version },
    (progress) => {
      serverFrames += progress.frames;
    },
  );
  try {
    await swarm.setMode("lifecycle");
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
    await swarm.drain();
    const start = { cpuUs: cpuUs(), atMs: performance.now(), ...counts(trivial, serverFrames) };
    await new Promise((resolve) => setTimeout(resolve, MEASURE_MS));
    await swarm.drain();
    const end = { cpuUs: cpuUs(), atMs: performance.now(), ...counts(trivial, serverFrames) };
    return {
      variant: variant.name,
      round,
      jobs: end.jobs - start.jobs,
      pilotFrames: end.pilotFrames - start.pilotFrames,
      serverFrames: end.serverFrames - start.serverFrames,
      cpuUs: end.cpuUs - start.cpuUs,
      ms: end.atMs - start.atMs,
    };
  } finally {
    await swarm.stop();
    await server.stop();
  }
}

function counts(trivial: TrivialHandlers, serverFrames: number) {
  return { jobs: trivial.jobs, pilotFrames: trivial.pilotFrames, serverFrames };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const usPerFrame = (leg: Leg) => leg.cpuUs / leg.pilotFrames;

async function main(): Promise<void> {
  const wanted = process.env.PANDA_BENCH_VERSIONS?.split(",").map(Number);
  const variantsOf = (build: GatewayBuild, prefix: string): Variant[] =>
    build.versions
      .filter((version) => wanted === undefined || wanted.includes(version))
      .map((version) => ({ name: `${prefix}v${version}`, module: build.module, version }));
  const variants: Variant[] = [];
  if (AGAINST) {
    const source = sourceAt(AGAINST);
    try {
      variants.push(...variantsOf(await bundleGateway(source, "base"), "base "));
    } finally {
      rmSync(source, { recursive: true, force: true });
    }
  }
  variants.push(...variantsOf(await bundleGateway(REPO_ROOT, "current"), ""));

  console.log(
    `bench:gateway: ${PILOTS} pilots, ${ROUNDS} rounds of ${variants.map((v) => v.name).join(", ")}, ` +
      `${MEASURE_MS / 1000} s each after ${WARMUP_MS / 1000} s${AGAINST ? `; base = ${AGAINST}` : ""}`,
  );
  const legs: Leg[] = [];
  const rows: (string | number)[][] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Each round starts with another variant, so none always runs first.
    const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]!);
    for (const variant of order) {
      const leg = await runLeg(variant, round);
      legs.push(leg);
      rows.push([
        String(round),
        leg.variant,
        (leg.jobs / leg.ms) * 1000,
        leg.pilotFrames / leg.jobs,
        leg.serverFrames / leg.jobs,
        usPerFrame(leg),
        leg.cpuUs / leg.jobs,
      ]);
    }
  }
  console.log(
    formatTable(
      [
        "round",
        "variant",
        "jobs/s",
        "pilot frames/job",
        "server frames/job",
        "CPU us/pilot frame",
        "CPU us/job",
      ],
      rows,
    ),
  );

  // Against a base, each variant compares with the base's leg of its version (else with the first
  // variant), round by round: the median of a round's ratios stands firmer than a ratio of medians
  // when the machine's speed drifts between rounds.
  const referenceOf = (variant: Variant) =>
    variants.find((other) => other.name === `base v${variant.version}`) ?? variants[0]!;
  const pairedRatio = (variant: Variant, figure: (leg: Leg) => number) => {
    const reference = referenceOf(variant);
    const ratios = legs
      .filter((leg) => leg.variant === variant.name)
      .map((leg) => {
        const other = legs.find((o) => o.variant === reference.name && o.round === leg.round)!;
        return figure(leg) / figure(other);
      });
    return median(ratios);
  };
  const usPerJob = (leg: Leg) => leg.cpuUs / leg.jobs;
  console.log(
    `\nmedians; ratio: the median of each round's ratio to the base's leg of the same version` +
      ` if there is one, else to ${variants[0]!.name}`,
  );
  console.log(
    formatTable(
      ["variant", "CPU us/pilot frame", "ratio", "CPU us/job", "ratio", "server frames/job"],
      variants.map((variant) => {
        const mine = legs.filter((leg) => leg.variant === variant.name);
        return [
          variant.name,
          median(mine.map(usPerFrame)),
          pairedRatio(variant, usPerFrame),
          median(mine.map(usPerJob)),
          pairedRatio(variant, usPerJob),
          median(mine.map((leg) => leg.serverFrames / leg.jobs)),
        ];
      }),
    ),
  );
}

await main();
