import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SIM_SEMI_SPACE_MB, simHeapFlags } from "../../src/cli/sim-heap.js";
import { runSimCli, SIM_EXIT } from "../../src/sim/cli.js";
import { smallScenario } from "../sim/small-scenario.js";
import { cleanEnv, runPanda } from "./panda-process.js";

const GIB = 1_073_741_824;

describe("the heap a simulation runs in", () => {
  it("adds the semi-space and old-space flags the caller did not give", () => {
    expect(simHeapFlags([], undefined, 24 * GIB)).toEqual([
      `--max-semi-space-size=${SIM_SEMI_SPACE_MB}`,
      "--max-old-space-size=18432",
    ]);
    expect(simHeapFlags(["--max-semi-space-size=32"], undefined, 8 * GIB)).toEqual([
      "--max-old-space-size=6144",
    ]);
    // NODE_OPTIONS counts too, in either spelling V8 accepts.
    expect(simHeapFlags([], "--inspect --max_old_space_size=4000", 8 * GIB)).toEqual([
      `--max-semi-space-size=${SIM_SEMI_SPACE_MB}`,
    ]);
    expect(simHeapFlags(["--max-old-space-size=100"], "--max-semi-space-size=8", 8 * GIB)).toEqual([]);
  });

  const dir = mkdtempSync(join(tmpdir(), "panda-sim-heap-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("`panda sim` runs the engine in a child with them, and its results are the same", async () => {
    const scenario = join(dir, "small.json");
    writeFileSync(scenario, JSON.stringify(smallScenario()));
    const viaCli = await runPanda(
      ["sim", scenario, "--seed", "5", "--out", join(dir, "cli"), "--quiet"],
      dir,
      cleanEnv({ NODE_OPTIONS: "" }),
    );
    expect(viaCli.stderr).toBe("");
    expect(viaCli.code).toBe(SIM_EXIT.ok);
    const timing = JSON.parse(readFileSync(join(dir, "cli", "timing.json"), "utf8")) as {
      nodeHeapFlags: string[];
    }[];
    for (const variant of timing)
      expect(variant.nodeHeapFlags).toEqual([
        `--max-semi-space-size=${SIM_SEMI_SPACE_MB}`,
        expect.stringMatching(/^--max-old-space-size=\d+$/),
      ]);

    expect(await runSimCli([scenario, "--seed", "5", "--out", join(dir, "here"), "--quiet"])).toBe(
      SIM_EXIT.ok,
    );
    expect(readFileSync(join(dir, "cli", "summary.json"), "utf8")).toBe(
      readFileSync(join(dir, "here", "summary.json"), "utf8"),
    );
  }, 120_000);
});
