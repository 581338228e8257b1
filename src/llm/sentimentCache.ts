import type { SentimentResult } from "./llm.js";

/** Only short texts are cached: they are the ones that repeat ("ok", "lol", "gg", "哈哈", "+1"). */
export const MAX_CACHED_TEXT_LENGTH = 200;

/** Whitespace- and case-insensitive key; NFKC folds full-width and compatibility forms ("ＯＫ" → "ok"). */
export function normaliseForCache(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/**
 * A bounded LRU of sentiment results by normalised text. One cache belongs to one loaded model and its prompts, so
 * a result is never reused across models or prompt changes.
 */
export class SentimentCache {
  private readonly entries = new Map<string, SentimentResult>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(text: string): SentimentResult | undefined {
    if (this.capacity === 0 || text.length > MAX_CACHED_TEXT_LENGTH) return undefined;
    const key = normaliseForCache(text);
    const found = this.entries.get(key);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert to mark as most recently used: Map keeps insertion order.
    this.entries.delete(key);
    this.entries.set(key, found);
    return found;
  }

  set(text: string, result: SentimentResult): void {
    if (this.capacity === 0 || text.length > MAX_CACHED_TEXT_LENGTH) return;
    const key = normaliseForCache(text);
    this.entries.delete(key);
    this.entries.set(key, result);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
