import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SERVER_NODE_FLAGS, SERVER_SEMI_SPACE_MB, youngGenerationAdvice } from "../../src/cli/server-heap.js";

const root = new URL("../../", import.meta.url);

describe("the young generation a server node runs with", () => {
  it("is what bin/panda.js's #! line, npm start and the benchmarks start Node with", () => {
    const flag = `--max-semi-space-size=${SERVER_SEMI_SPACE_MB}`;
    expect(SERVER_NODE_FLAGS).toEqual([flag]);
    const shebang = readFileSync(new URL("bin/panda.js", root), "utf8").split("\n")[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${flag}`);
    const scripts = JSON.parse(readFileSync(new URL("package.json", root), "utf8")).scripts as Record<
      string,
      string
    >;
    expect(scripts.start).toBe(`node ${flag} bin/panda.js up`);
    for (const bench of ["bench:dispatch", "bench:runtime", "bench:gateway"])
      expect(scripts[bench]).toContain(`node ${flag} --import tsx bench/`);
  });

  it("advises the flag only when neither the command line nor NODE_OPTIONS sets a size", () => {
    expect(youngGenerationAdvice([], undefined)).toContain(`--max-semi-space-size=${SERVER_SEMI_SPACE_MB}`);
    expect(youngGenerationAdvice(["--import", "tsx"], "--inspect")).not.toBeNull();
    expect(youngGenerationAdvice(["--max-semi-space-size=32"], undefined)).toBeNull();
    expect(youngGenerationAdvice([], "--max_semi_space_size=128")).toBeNull();
  });
});
