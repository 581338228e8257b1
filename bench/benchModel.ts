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

/** Qwen2.5-1.5B-Instruct's shape (tied embeddings, as the real one). */
export const QWEN_15B_SHAPE = {
  layers: 28,
  hidden: 1536,
  heads: 12,
  kvHeads: 2,
  ffn: 8960,
  vocabularySize: 151936,
} as const;

/** Qwen2.5-3B-Instruct's shape (tied embeddings, as the real one). */
export const QWEN_3B_SHAPE = {
  layers: 36,
  hidden: 2048,
  heads: 16,
  kvHeads: 2,
  ffn: 11008,
  vocabularySize: 151936,
} as const;

type Shape = typeof QWEN_05B_SHAPE | typeof QWEN_15B_SHAPE | typeof QWEN_3B_SHAPE;

/** The larger shapes `npm run bench -- --shapes` measures beside the default model's. */
export const LARGER_SHAPES: ReadonlyArray<{
  readonly name: string;
  readonly label: string;
  readonly shape: Shape;
}> = [
  { name: "qwen2.5-1.5b", label: "Qwen2.5-1.5B shape", shape: QWEN_15B_SHAPE },
  { name: "qwen2.5-3b", label: "Qwen2.5-3B shape", shape: QWEN_3B_SHAPE },
];

const MODEL_FILE = "qwen2.5-0.5b-shape-random-q8_0-v2.gguf";
const LONG_REPLY_MODEL_FILE = "qwen2.5-0.5b-shape-random-q8_0-favours-lorem-v1.gguf";

/**
 * A random-weight model of the real Qwen2.5-0.5B shape, Q8_0, with the real vocabulary and chat template. Built
 * once into .cache/bench (about 500 MB) and reused: the text is nonsense, the timings are real.
 */
export function ensureBenchModel(log: (line: string) => void): Promise<{ path: string; builtMs: number }> {
  return ensureModel(MODEL_FILE, undefined, log);
}

/** A random-weight model of a larger Qwen2.5 shape, Q8_0 (1.6 GB for 1.5B, 3.3 GB for 3B), built once. */
export function ensureShapeModel(
  name: string,
  shape: Shape,
  log: (line: string) => void,
): Promise<{ path: string; builtMs: number }> {
  return ensureModel(`${name}-shape-random-q8_0-v1.gguf`, undefined, log, shape, name);
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
  shape: Shape = QWEN_05B_SHAPE,
  name = "qwen2.5-0.5b",
): Promise<{ path: string; builtMs: number }> {
  const path = join(REPO_ROOT, ".cache", "bench", file);
  if (existsSync(path)) return { path, builtMs: 0 };
  log(`building ${path} (once; a minute per 0.5B parameters)…`);
  const started = performance.now();
  await writeQwenGguf({
    path,
    name: `${name}-shape-random`,
    ...shape,
    contextLength: 32768,
    vocabulary: qwenVocabulary(),
    weightType: "q8_0",
    seed: 2025,
    ...(favouredToken === undefined ? {} : { favouredToken }),
  });
  return { path, builtMs: performance.now() - started };
}
