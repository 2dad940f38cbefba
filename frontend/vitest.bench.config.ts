import { defineConfig } from "vitest/config";

// Browser measurements against the real stack (e2e/*.measure.ts): they print figures and
// ratios to targets; they are run by `./dev bench-frontend`, not by the test suite.
export default defineConfig({
  test: {
    include: ["e2e/**/*.measure.ts"],
    environment: "node",
    testTimeout: 900_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
});
