import { DEFAULT_MOOD_EMOJIS } from "../src/config.js";
import { LABEL_NAMES, type Language, TEXTS } from "../src/i18n.js";
import type { SentimentResult } from "../src/llm/sentiment.js";
import { parseMoodEmojis, SENTIMENT_LABELS } from "../src/moodEmojis.js";

const DEFAULT_EMOJIS = parseMoodEmojis(DEFAULT_MOOD_EMOJIS);

const percent = (value: number) => `${Math.round(value * 100)}%`;

/** The answer /sentiment and "Analyze mood" give: emoji, label, confidence, then every label's probability. */
export function formatSentimentAnswer(
  result: SentimentResult,
  emoji: string | undefined,
  language: Language = "en",
): string {
  const names = LABEL_NAMES[language];
  const shown = emoji ?? DEFAULT_EMOJIS[result.label];
  const breakdown = SENTIMENT_LABELS.map(
    (label) => `${names[label]} ${percent(result.probabilities[label])}`,
  ).join(" · ");
  return `${shown} **${names[result.label]}** ${TEXTS[language].confidence(percent(result.confidence))}\n-# ${breakdown}`;
}
