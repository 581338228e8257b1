import type { Llm, SentimentResult } from "../src/llm/llm.js";
import { applyNeutralThreshold } from "../src/llm/neutralThreshold.js";
import { type InProcessChoice, openModel, type RuntimeChoice } from "../src/llm/openModel.js";
import { createLogger } from "../src/platform/logger.js";
import type { Prompts } from "../src/prompts/prompts.js";
import { normaliseInput } from "../src/text/normaliseInput.js";
import type { EvalExample } from "./dataset.js";
import type { Prediction } from "./metrics.js";

/*
 * The bot method, measured as the bot runs it: through `Llm`, the seam the bot itself uses, so the same eval scores
 * the model in-process or on an inference server (LLM_SERVER_URL). The baselines (grammar, the article's method)
 * stay in-process: they are ways of reading a model, not the bot's.
 */

export interface Classified {
  readonly prediction: Prediction;
  /** The article's methods: the answer held neither 正面 nor 负面, so the method's rule made it neutral. */
  readonly neither?: boolean;
  readonly confidence?: number;
  readonly evaluatedTokens: number;
  readonly ms: number;
}

/** Opens the bot's model with some prompts: the eval asks once, and reloads it for each other prompt folder. */
export type OpenBot = (prompts: Prompts) => Promise<Llm>;

/** What the bot records for a message that normalises to nothing: no model work, and no reaction. */
export const SKIPPED: SentimentResult = {
  label: "neutral",
  confidence: 1,
  probabilities: { positive: 0, negative: 0, neutral: 1 },
  method: "logits",
  evaluatedTokens: 0,
  truncated: false,
};

/**
 * The text each method classifies: exactly what the bot would (see normaliseInput); a message that normalises to
 * nothing gets no reaction from the bot, which the eval counts as neutral.
 */
export function botInput(text: string): string {
  return normaliseInput(text);
}

/**
 * A model file in the bot's process, with the bot's own runtime and no result cache: a text the eval has already
 * seen is classified again, so every latency and token count is the model's own.
 */
export function inProcessBot(
  modelPath: string,
  threads: number,
  base?: Omit<InProcessChoice, "path" | "threads">,
): OpenBot {
  return openBot({
    runtime: "in-process",
    uri: "",
    directory: "",
    downloadTimeoutS: 60,
    contextSize: 2048,
    chatSequences: 1,
    sentimentSequences: 1,
    batchSize: 512,
    gpu: "off",
    ...base,
    path: modelPath,
    threads,
  });
}

/** The bot's model wherever the choice puts it, with no result cache and no queue limit the eval could meet. */
export function openBot(choice: RuntimeChoice): OpenBot {
  return (prompts) =>
    openModel(choice, {
      logger: createLogger({ level: "silent" }),
      prompts,
      tasks: [],
      sentiment: { queueSize: 1_000_000, maxWaitMs: 3_600_000, cacheSize: 0 },
      chatSpeedFloor: 0.35,
    });
}

/** Each example through the bot's model, one at a time (so each latency is one message's), as the bot shows it. */
export async function classifyWithBot(
  llm: Llm,
  examples: readonly EvalExample[],
  neutralThreshold: number,
): Promise<{ results: Classified[]; raw: SentimentResult[] }> {
  const results: Classified[] = [];
  const raw: SentimentResult[] = [];
  for (const example of examples) {
    const text = botInput(example.text);
    if (text === "") {
      // The bot skips such a message (no reaction): neutral, with no model work.
      raw.push(SKIPPED);
      results.push({ prediction: "neutral", confidence: 1, evaluatedTokens: 0, ms: 0 });
      continue;
    }
    const started = performance.now();
    const measured = await llm.classifySentiment(text, { priority: "interactive" });
    const ms = performance.now() - started;
    raw.push(measured);
    // The bot applies SENTIMENT_NEUTRAL_THRESHOLD to what it measured; the eval scores what the bot would show.
    const shown = applyNeutralThreshold(measured, neutralThreshold);
    results.push({
      prediction: shown.label,
      confidence: shown.confidence,
      evaluatedTokens: shown.evaluatedTokens,
      ms,
    });
  }
  return { results, raw };
}

/**
 * A server runtime opens at once and connects on its own: the eval waits for it, for `timeoutMs` at most, and
 * names the cause when it never becomes usable. An in-process model is ready when it opens.
 */
export async function whenReady(llm: Llm, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const { readiness } = llm;
    if (readiness.ready) return;
    if (performance.now() >= deadline)
      throw new Error(`the model did not become ready within ${timeoutMs} ms: ${readiness.cause}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
