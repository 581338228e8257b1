import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadModelOptions } from "../src/llm/inProcess/model.js";
import { createLogger } from "../src/logger.js";
import { loadPrompts } from "../src/prompts.js";
import { type TinyModelOptions, writeTinyQwenGguf } from "./gguf.js";

/** Writes a tiny test model into a fresh temp folder; a few hundred kilobytes, written in milliseconds. */
export async function tinyModel(options: TinyModelOptions = {}): Promise<string> {
  const dir = join(tmpdir(), "moodbot-test-models");
  await mkdir(dir, { recursive: true });
  const name = [
    "tiny",
    options.favouredToken === undefined
      ? "random"
      : `favours-${Buffer.from(options.favouredToken).toString("hex")}`,
    options.collidingLabels ? "colliding" : "distinct",
    String(options.seed ?? 7),
    String(options.vocabularySize ?? "minimal"),
    options.extraWords === undefined ? "" : Buffer.from(options.extraWords.join("|")).toString("hex"),
    String(process.pid),
  ].join("-");
  return writeTinyQwenGguf(join(dir, `${name}.gguf`), options);
}

/**
 * Options for loading a test model with `loadModel` straight from a file: one thread, one chat sequence, one
 * sentiment sequence, the CPU, the cache off and a silent logger, so that each test states only what it is about.
 */
export function testModelOptions(
  overrides: Partial<LoadModelOptions> & Pick<LoadModelOptions, "path">,
): LoadModelOptions {
  return {
    uri: "",
    directory: "",
    downloadTimeoutS: 60,
    threads: 1,
    contextSize: 2048,
    chatSequences: 1,
    sentimentSequences: 1,
    batchSize: 128,
    gpu: "off",
    chatSpeedFloor: 0.35,
    sentiment: { queueSize: 10, maxWaitMs: 30_000, cacheSize: 0 },
    prompts: loadPrompts(),
    logger: createLogger({ level: "silent" }),
    ...overrides,
  };
}
