import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // node-llama-cpp is a native addon: separate processes keep each file's model and threads isolated.
    pool: "forks",
    // Two cores: one test file at a time keeps model timings sane and avoids starving the fake gateway.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
