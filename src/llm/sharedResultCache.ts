import { createHash } from "node:crypto";
import { DeadlineExceeded, withinDeadline } from "../platform/deadline.js";
import type { Logger } from "../platform/logger.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../platform/sentimentLabels.js";
import type { LabelMethod, SentimentResult, SharedCacheStats } from "./llm.js";
import { MAX_CACHED_TEXT_LENGTH, normaliseForCache, type SentimentCache } from "./sentimentCache.js";

/** What the shared cache holds for one text: the label and its probabilities, never the text itself. */
export interface CachedLabels {
  readonly label: string;
  readonly probabilities: Readonly<Record<string, number>>;
}

/**
 * A result cache that every shard and process can share, such as Redis. The model layer only knows this
 * interface; the store layer implements it and the assembly hands it in.
 */
export interface SharedResultStore {
  get(key: string): Promise<CachedLabels | undefined>;
  set(key: string, value: CachedLabels): Promise<void>;
}

export interface LayeredCacheOptions {
  readonly local: SentimentCache;
  readonly shared: SharedResultStore | undefined;
  /** Names the model and the prompt: results of another model or prompt version are never reused. */
  readonly namespace: string;
  /** The local classifier's method, reported on results that came from the shared cache. */
  readonly method: LabelMethod;
  /** A shared lookup slower than this is abandoned, and the model classifies the text instead. */
  readonly budgetMs: number;
  readonly logger: Logger;
}

/**
 * The process's own LRU in front of the shared cache. A shared lookup never delays a reaction by more than its
 * budget: a slow or unreachable store is answered by the model.
 */
export class LayeredSentimentCache {
  readonly shared: SharedCacheStats = { hits: 0, misses: 0, timeouts: 0, errors: 0 };

  constructor(private readonly options: LayeredCacheOptions) {}

  get local(): SentimentCache {
    return this.options.local;
  }

  async lookup(text: string): Promise<SentimentResult | undefined> {
    const local = this.options.local.get(text);
    if (local) return local;
    const { shared } = this.options;
    if (!shared || text.length > MAX_CACHED_TEXT_LENGTH) return undefined;
    const found = await this.withinBudget(shared.get(this.key(text)));
    const result = found === undefined ? undefined : toResult(found, this.options.method);
    if (!result) {
      this.shared.misses++;
      return undefined;
    }
    this.shared.hits++;
    this.options.local.set(text, result);
    return result;
  }

  /** Keeps a fresh result locally and, without waiting, in the shared cache. */
  store(text: string, result: SentimentResult): void {
    this.options.local.set(text, result);
    const { shared } = this.options;
    if (!shared || text.length > MAX_CACHED_TEXT_LENGTH) return;
    shared
      .set(this.key(text), { label: result.label, probabilities: result.probabilities })
      .catch((error: unknown) => {
        this.shared.errors++;
        this.options.logger.debug({ err: error }, "shared result cache write failed");
      });
  }

  /** A hash of the namespace and the normalised text: the store never sees what anyone wrote. */
  private key(text: string): string {
    return createHash("sha256")
      .update(this.options.namespace)
      .update("\u0000")
      .update(normaliseForCache(text))
      .digest("hex");
  }

  /**
   * The lookup's value, or undefined when it fails or misses its budget. Every failure is counted, also one that
   * comes after the budget was spent (that lookup then counts as a timeout and an error).
   */
  private async withinBudget(lookup: Promise<CachedLabels | undefined>): Promise<CachedLabels | undefined> {
    const answered = lookup.then(
      (value) => value,
      (error: unknown) => {
        this.shared.errors++;
        this.options.logger.debug({ err: error }, "shared result cache lookup failed");
        return undefined;
      },
    );
    try {
      // A slow cache must not hold up a process that is ending: the model answers instead.
      return await withinDeadline(answered, this.options.budgetMs, { keepsProcessAlive: false });
    } catch (error) {
      if (!(error instanceof DeadlineExceeded)) throw error;
      this.shared.timeouts++;
      this.options.logger.debug({ budgetMs: this.options.budgetMs }, "shared result cache too slow");
      return undefined;
    }
  }
}

/** Checks what came back from outside the process: anything malformed is a miss. */
function toResult(found: CachedLabels, method: LabelMethod): SentimentResult | undefined {
  const label = SENTIMENT_LABELS.find((known) => known === found.label);
  if (label === undefined) return undefined;
  const probabilities = {} as Record<SentimentLabel, number>;
  for (const known of SENTIMENT_LABELS) {
    const value = found.probabilities[known];
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) return undefined;
    probabilities[known] = value;
  }
  return {
    label,
    confidence: probabilities[label],
    probabilities,
    method,
    evaluatedTokens: 0,
    truncated: false,
    cached: true,
  };
}

/** The cache namespace for one model file and one rendered prompt. */
export function cacheNamespace(parts: readonly (string | number)[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 16);
}
