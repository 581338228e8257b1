import type { ChatWrapper, Llama, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { type Prompts, renderSentimentTurns } from "../prompts.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../sentimentLabels.js";
import { LabelClassifier, type LabelMethod, type LabelResult } from "./labelClassifier.js";

export type SentimentMethod = LabelMethod;

export interface SentimentResult extends LabelResult<SentimentLabel> {
  /** True when the result came from the cache of repeated short messages, with no model work. */
  readonly cached?: boolean;
  /** True when the model's best label was below the neutral threshold and the label became neutral. */
  readonly belowThreshold?: boolean;
}

export interface SentimentClassifierOptions {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly prompts: Prompts;
  readonly maxMessageTokens?: number;
  readonly method?: SentimentMethod;
}

/** Sentiment is one label task: positive, negative or neutral, with a tie read as neutral. */
export type SentimentClassifier = LabelClassifier<SentimentLabel>;

export function createSentimentClassifier(options: SentimentClassifierOptions): Promise<SentimentClassifier> {
  const { prompts, ...rest } = options;
  return LabelClassifier.create({
    ...rest,
    labels: SENTIMENT_LABELS,
    tieBreak: "neutral",
    renderTurns: (message) => renderSentimentTurns(prompts, message),
  });
}

/**
 * Counts an unsure answer as neutral: when the best label's probability is below `threshold`, the label becomes
 * neutral (the probabilities are kept as measured). A threshold of 0 changes nothing.
 */
export function applyNeutralThreshold(result: SentimentResult, threshold: number): SentimentResult {
  if (threshold <= 0 || result.confidence >= threshold || result.label === "neutral") return result;
  return { ...result, label: "neutral", confidence: result.probabilities.neutral, belowThreshold: true };
}
