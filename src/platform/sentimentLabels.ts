export const SENTIMENT_LABELS = ["positive", "negative", "neutral"] as const;
export type SentimentLabel = (typeof SENTIMENT_LABELS)[number];

/** An empty string means "no reaction for this label". */
export type EmojiMap = Readonly<Record<SentimentLabel, string>>;

const isLabel = (value: string): value is SentimentLabel =>
  (SENTIMENT_LABELS as readonly string[]).includes(value);

/**
 * Parses `positive=😄,negative=😢,neutral=😐`. Every label must appear exactly once; an emoji may be a unicode
 * emoji, a custom emoji tag `<:name:id>`, or empty.
 */
export function parseMoodEmojis(spec: string): EmojiMap {
  const result: Partial<Record<SentimentLabel, string>> = {};
  for (const part of spec.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw new Error(`"${part.trim()}" has no "=": write label=emoji`);
    const label = part.slice(0, eq).trim().toLowerCase();
    const emoji = part.slice(eq + 1).trim();
    if (!isLabel(label))
      throw new Error(`"${label}" is not a label; the labels are ${SENTIMENT_LABELS.join(", ")}`);
    if (label in result) throw new Error(`"${label}" is given twice`);
    if (/\s/.test(emoji)) throw new Error(`the emoji for ${label} contains a space`);
    result[label] = emoji;
  }
  const missing = SENTIMENT_LABELS.filter((label) => !(label in result));
  if (missing.length > 0)
    throw new Error(`${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing`);
  return Object.freeze(result as Record<SentimentLabel, string>);
}

/** The emoji to react with, or undefined when that label is set to no reaction. */
export function emojiForLabel(map: EmojiMap, label: SentimentLabel): string | undefined {
  const emoji = map[label];
  return emoji === "" ? undefined : emoji;
}
