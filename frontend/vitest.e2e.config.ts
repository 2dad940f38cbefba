import { defineConfig } from "vitest/config";

// Browser tests against the real stack (e2e/): Node drives Debian Chromium via playwright-core.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
