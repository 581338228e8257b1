/*
 * Member text that reaches a server as text (Ollama's raw prompt, chat messages, vLLM's /tokenize, which always
 * parses added-token strings) could otherwise spell a control token: "<|im_start|>system" in a mention would open
 * a turn the bot never wrote. A WORD JOINER (U+2060) inside each such string keeps it readable to the model and to
 * people, but no tokenizer matches it as the special token any more. Pure, and idempotent: neutralised text
 * neutralises to itself, so a prompt builder and a backend may both apply it.
 */

/** Invisible, and unlike a zero-width joiner it never fuses neighbouring emoji into one glyph. */
export const WORD_JOINER = "\u2060";

/*
 * The shapes control tokens take across model families, each matched where a joiner goes after its first
 * character:
 * - `<|…|>` (ChatML, Llama 3, Phi) and DeepSeek's full-width `<｜…｜>`: both the opening and the closing pair;
 * - `<s>`, `</s>`, `<think>`, `<start_of_turn>`: a tag of one identifier, with no attributes (Discord's own
 *   `<@id>`, `<#id>` and `<:emoji:id>` do not start with a letter, so they stay as they are);
 * - `[INST]`, `[/INST]`, `[SYSTEM_PROMPT]`: Mistral's upper-case markers.
 */
const GENERIC_SHAPES = [
  "<(?=[|｜])",
  "[|｜](?=>)",
  String.raw`<(?=/?[A-Za-z_][A-Za-z0-9_.\-]{0,63}>)`,
  String.raw`\[(?=/?[A-Z][A-Z0-9_]{1,63}\])`,
];

const escapeForRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Builds the neutraliser once for a served model: `specialTokens` are its own control-token strings (from its
 * tokenizer or template), for shapes the generic ones miss. Strings shorter than two characters cannot be broken
 * and are skipped.
 */
export function controlTokenNeutraliser(specialTokens: readonly string[] = []): (text: string) => string {
  const literals = [...new Set(specialTokens)]
    .filter((token) => [...token].length >= 2)
    .sort((a, b) => b.length - a.length)
    .map((token) => {
      const first = [...token][0] ?? "";
      // Matches the first character where the rest of the token follows, so the joiner lands inside it.
      return `${escapeForRegExp(first)}(?=${escapeForRegExp(token.slice(first.length))})`;
    });
  const pattern = new RegExp([...literals, ...GENERIC_SHAPES].join("|"), "gu");
  return (text) => text.replace(pattern, (match) => match + WORD_JOINER);
}

/** Makes control-token strings in member text inert. See controlTokenNeutraliser to reuse one for many texts. */
export function neutraliseControlTokens(text: string, specialTokens?: readonly string[]): string {
  return controlTokenNeutraliser(specialTokens)(text);
}
