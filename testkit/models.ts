import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadModelOptions } from "../src/llm/inProcess/model.js";
import { createLogger } from "../src/platform/logger.js";
import { loadPrompts } from "../src/prompts/prompts.js";
import { type TinyModelOptions, writeTinyQwenGguf } from "./gguf.js";
import { writeLabelSensitiveGguf } from "./labelSensitiveGguf.js";

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
 * Writes the label-sensitive test model (testkit/labelSensitiveGguf.ts): its label probabilities follow the
 * message's words, so two runtimes that agree on it read the message the same way. A few hundred kilobytes.
 */
export async function labelSensitiveModel(options: { readonly seed?: number } = {}): Promise<string> {
  const dir = join(tmpdir(), "moodbot-test-models");
  await mkdir(dir, { recursive: true });
  const name = `label-sensitive-${options.seed ?? "default"}-${process.pid}.gguf`;
  return writeLabelSensitiveGguf({ path: join(dir, name), ...options });
}

/**
 * Options for loading a test model with `loadModel` straight from a file: one thread, one chat sequence, one
 * sentiment sequence, the CPU and a silent logger (loadModel has no result cache: that layer sits above it), so that each test states only what it is about.
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
    sentiment: { queueSize: 10, maxWaitMs: 30_000 },
    prompts: loadPrompts(),
    logger: createLogger({ level: "silent" }),
    ...overrides,
  };
}
