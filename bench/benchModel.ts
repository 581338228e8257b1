import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../testkit/botProcess.js";
import { writeQwenGguf } from "../testkit/gguf.js";
import { qwenVocabulary } from "./qwenVocabulary.js";

/** The real Qwen2.5-0.5B-Instruct shape; bump the version when the writer or the shape changes. */
export const QWEN_05B_SHAPE = {
  layers: 24,
  hidden: 896,
  heads: 14,
  kvHeads: 2,
  ffn: 4864,
  vocabularySize: 151936,
} as const;

const MODEL_FILE = "qwen2.5-0.5b-shape-random-q8_0-v2.gguf";
const LONG_REPLY_MODEL_FILE = "qwen2.5-0.5b-shape-random-q8_0-favours-lorem-v1.gguf";

/**
 * A random-weight model of the real Qwen2.5-0.5B shape, Q8_0, with the real vocabulary and chat template. Built
 * once into .cache/bench (about 500 MB) and reused: the text is nonsense, the timings are real.
 */
export function ensureBenchModel(log: (line: string) => void): Promise<{ path: string; builtMs: number }> {
  return ensureModel(MODEL_FILE, undefined, log);
}

/**
 * The same shape with " lorem" favoured after any input: its replies never end early, so a reply runs to
 * CHAT_MAX_TOKENS as real replies of 100 to 400 tokens do. Same shape, same cost per pass.
 */
export function ensureLongReplyBenchModel(
  log: (line: string) => void,
): Promise<{ path: string; builtMs: number }> {
  return ensureModel(LONG_REPLY_MODEL_FILE, " lorem", log);
}

async function ensureModel(
  file: string,
  favouredToken: string | undefined,
  log: (line: string) => void,
): Promise<{ path: string; builtMs: number }> {
  const path = join(REPO_ROOT, ".cache", "bench", file);
  if (existsSync(path)) return { path, builtMs: 0 };
  log(`building ${path} (once; about a minute)…`);
  const started = performance.now();
  await writeQwenGguf({
    path,
    name: "qwen2.5-0.5b-shape-random",
    ...QWEN_05B_SHAPE,
    contextLength: 32768,
    vocabulary: qwenVocabulary(),
    weightType: "q8_0",
    seed: 2025,
    ...(favouredToken === undefined ? {} : { favouredToken }),
  });
  return { path, builtMs: performance.now() - started };
}
