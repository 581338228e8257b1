import type { ChatTurn } from "../prompts.js";
import type { Task } from "../tasks.js";
import type { ChatCompletion } from "./chat.js";
import type { LabelResult } from "./labelClassifier.js";
import type { JobPriority, SchedulerStats } from "./scheduler.js";
import type { SentimentResult } from "./sentiment.js";
import type { SharedCacheStats } from "./sharedResultCache.js";

export interface ClassifyOptions {
  readonly signal?: AbortSignal;
  readonly priority?: JobPriority;
  /** Who the work is for (a guild id): background work is shared round-robin between groups. */
  readonly group?: string;
}

export interface GenerateChatOptions {
  readonly signal?: AbortSignal;
  /** The conversation this turn belongs to: its warm sequence is reused when it still has one. */
  readonly channelKey: string;
  readonly maxTokens: number;
  readonly temperature: number;
  /** Called with each piece of reply text as it is generated. */
  readonly onText?: (text: string) => void;
}

export type TaskOutcome =
  | { readonly kind: "labels"; readonly result: LabelResult<string> }
  | { readonly kind: "text"; readonly text: string; readonly generatedTokens: number };

export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
  readonly shared: Readonly<SharedCacheStats>;
}

/** The one model, as the rest of the bot sees it. Every call goes through the pass scheduler. */
export interface Llm {
  readonly modelName: string;
  /** Which compute backend runs the model: "cpu", "cuda", "vulkan" or "metal". */
  readonly backend: string;
  readonly contextSize: number;
  readonly schedulerStats: Readonly<SchedulerStats>;
  readonly cacheStats: CacheStats;
  classifySentiment(text: string, options?: ClassifyOptions): Promise<SentimentResult>;
  generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion>;
  /** Runs a prompt-defined task on an input, as interactive work. */
  runTask(task: Task, input: string, options?: { signal?: AbortSignal }): Promise<TaskOutcome>;
  countTokens(text: string): number;
  /** Cuts text to at most `maxTokens` tokens, at a token boundary. */
  truncateToTokens(text: string, maxTokens: number): string;
  /**
   * Refuses new model work and cancels what waits or runs, at once; the model stays loaded (so callers can still
   * count tokens while they store what was interrupted) until `close`.
   */
  interrupt(): void;
  /** Interrupts, waits for the pass in flight, and frees the model. */
  close(): Promise<void>;
}
