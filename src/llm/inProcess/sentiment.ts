import type { ChatWrapper, Llama, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { SENTIMENT_LABELS, type SentimentLabel } from "../../platform/sentimentLabels.js";
import { type Prompts, renderSentimentTurns } from "../../prompts/prompts.js";
import type { LabelMethod } from "../llm.js";
import { LabelClassifier } from "./labelClassifier.js";

export interface SentimentClassifierOptions {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly prompts: Prompts;
  readonly maxMessageTokens?: number;
  readonly method?: LabelMethod;
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
