import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Process-level tests (SIGSTOP, SIGKILL, clusters) need real processes and predictable CPU.
    pool: "forks",
    maxWorkers: 2,
    // Every actor step also runs on xstate and is compared: the compiled machines must equal it.
    env: { PANDA_VERIFY_MACHINES: "1" },
  },
});
