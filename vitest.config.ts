import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Process-level tests (SIGSTOP, SIGKILL, clusters) need real processes and predictable CPU.
    pool: "forks",
    maxWorkers: 2,
  },
});
