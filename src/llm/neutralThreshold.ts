import type { SentimentResult } from "./llm.js";

/**
 * Counts an unsure answer as neutral: when the best label's probability is below `threshold`, the label becomes
 * neutral (the probabilities are kept as measured). A threshold of 0 changes nothing.
 */
export function applyNeutralThreshold(result: SentimentResult, threshold: number): SentimentResult {
  if (threshold <= 0 || result.confidence >= threshold || result.label === "neutral") return result;
  return { ...result, label: "neutral", confidence: result.probabilities.neutral };
}
