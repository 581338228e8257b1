import { defineConfig } from "vitest/config";
import { NODE_RUNTIME_FLAGS } from "./src/entry/runtimeFlags.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // node-llama-cpp is a native addon: separate processes keep each file's model and threads isolated.
    pool: "forks",
    // Test workers run the bot and the model in-process: they get the bot's Node.js flags.
    execArgv: [...NODE_RUNTIME_FLAGS],
    // Two cores: one test file at a time keeps model timings sane and avoids starving the fake gateway.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
