import { describe, expect, it } from "vitest";
import { runVariant } from "../../src/sim/harness.js";
import { parseScenario } from "../../src/sim/scenario.js";
import { smallScenario } from "./small-scenario.js";

describe("retirement of jobs that are over", () => {
  it("drops jobs and their dispatch data from memory without changing what the simulation decides", async () => {
    const scenario = parseScenario(smallScenario());
    const run = (retireAfterMs: number | null) =>
      runVariant({
        scenario,
        variant: scenario.variants[0]!,
        seed: 5,
        durationMs: scenario.duration,
        retireAfterMs,
      });
    const kept = await run(null);
    const retired = await run(60_000);
    expect(kept.timing.retiredActors).toBe(0);
    expect(retired.timing.retiredActors).toBeGreaterThan(100);
    expect(JSON.stringify(retired.summary)).toBe(JSON.stringify(kept.summary));
  });
});
