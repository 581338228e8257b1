import type { SentimentResult } from "../src/llm/llm.js";
import { SENTIMENT_LABELS } from "../src/platform/sentimentLabels.js";
import { percent, type Wording } from "../src/wording/wording.js";

/**
 * The answer /sentiment and "Analyze mood" give: emoji, label, confidence, then every label's probability. The
 * emoji is the one in force in the channel; a label whose emoji is turned off shows none.
 */
export function formatSentimentAnswer(
  result: SentimentResult,
  emoji: string | undefined,
  wording: Wording,
): string {
  const names = wording.labels;
  const breakdown = SENTIMENT_LABELS.map(
    (label) => `${names[label]} ${percent(result.probabilities[label])}`,
  ).join(" · ");
  const head = `**${names[result.label]}** ${wording.confidence(percent(result.confidence))}`;
  return `${emoji === undefined ? head : `${emoji} ${head}`}\n-# ${breakdown}`;
}
