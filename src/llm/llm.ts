import type { SentimentLabel } from "../platform/sentimentLabels.js";
import type { ChatTurn, Prompts } from "../prompts/prompts.js";
import type { Task } from "../tasks/tasks.js";

/*
 * The model as the rest of the bot sees it, and every type that crosses that line. Nothing here depends on a
 * runtime: the in-process one (src/llm/inProcess/, node-llama-cpp behind the pass scheduler) and the server one
 * (src/llm/server/) both implement `Llm`, and the result caches (resultCachedLlm.ts) wrap either.
 */

/**
 * How a label was read. `logits`: the exact softmax over the label tokens, from one pass (in-process, llama-server,
 * vLLM's logprob_token_ids). `grammar`: by constrained decoding, where the labels share a first token.
 * `top-logprobs`: approximate, from the top-k list a server returned (labels outside it count as unlikely).
 */
export type LabelMethod = "logits" | "grammar" | "top-logprobs";

/** An inference server's protocol: llama.cpp's llama-server, vLLM, Ollama, or any OpenAI-compatible API. */
export type ServerKind = "llama.cpp" | "vllm" | "ollama" | "openai";

/** Where the model runs, how it reads labels, and which model it is: for logs, metrics and the result caches. */
export interface ModelRuntimeInfo {
  readonly kind: "in-process" | ServerKind;
  readonly method: LabelMethod;
  /** The model file's name in-process; the served model's name on a server. */
  readonly model: string;
}

/**
 * Whether the model can do work now. In-process it always can once loaded; a server can be unreachable, refuse the
 * key, or serve a model whose labels cannot be read, and `cause` says which in one sentence for /readyz.
 */
export type ModelReadiness =
  | { readonly ready: true }
  | {
      readonly ready: false;
      readonly cause: string;
      /**
       * What kind of problem, such as "unreachable", "unauthorized" or "labels unreadable": a caller that waits can
       * tell a server still starting from one that will not become usable by waiting.
       */
      readonly problem?: string;
    };

export interface LabelResult<L extends string> {
  readonly label: L;
  /** The probability of `label` among the labels. */
  readonly confidence: number;
  /** Each label's probability; they sum to 1. */
  readonly probabilities: Readonly<Record<L, number>>;
  readonly method: LabelMethod;
  /** Tokens evaluated for this input: its own tokens plus the short fixed suffix, never the prefix. */
  readonly evaluatedTokens: number;
  /** True when the input was longer than the token budget and only its start was read. */
  readonly truncated: boolean;
}

export interface SentimentResult extends LabelResult<SentimentLabel> {
  /** True when the result came from a result cache, with no model work. */
  readonly cached?: boolean;
}

export type ChatStopReason = "eogToken" | "stopTrigger" | "maxTokens";

export interface ChatCompletion {
  readonly text: string;
  readonly stopReason: ChatStopReason;
  readonly generatedTokens: number;
  /** Prompt tokens the model had to evaluate: the whole prompt when cold, only the new turns when warm. */
  readonly evaluatedPromptTokens: number;
}

/** Interactive work (mentions, commands) is never held back; background work (mood reactions) fills the rest. */
export type JobPriority = "interactive" | "background";

export interface ClassifyOptions {
  readonly signal?: AbortSignal;
  readonly priority?: JobPriority;
  /** Who the work is for (a guild id): background work is shared round-robin between groups. */
  readonly group?: string;
  /** Under overload, shed this background work only after all the rest (moderation, after reactions). */
  readonly shedLast?: boolean;
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

export interface SchedulerStats {
  completed: number;
  failed: number;
  shedFull: number;
  shedStale: number;
  cancelled: number;
  /** Forward passes issued, and how many carried more than one piece of work. */
  passes: number;
  sharedPasses: number;
}

/** What a prompt reload loaded. */
export interface PromptReload {
  readonly sentimentPrefixTokens: number;
  /** Label tasks added since the model was loaded, beyond the sequences it has: they need a restart. */
  readonly withoutSequence: readonly string[];
}

/** Jobs waiting for the model, by kind. */
export interface QueueDepth {
  /** Classifications someone is waiting for (commands). */
  readonly interactive: number;
  /** Mood reactions. */
  readonly background: number;
  /** Replies and text tasks waiting for a sequence or their first pass. */
  readonly chat: number;
}

/** One forward pass, once it returned. */
export interface PassReport {
  readonly durationMs: number;
  /** Classifications it carried, by lane ("sentiment", "task:intent"). */
  readonly classifications: Readonly<Record<string, number>>;
  /** Generation prompts and steps it carried. */
  readonly generationSteps: number;
}

export interface SharedCacheStats {
  hits: number;
  misses: number;
  timeouts: number;
  errors: number;
}

export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
  readonly shared: Readonly<SharedCacheStats>;
}

/** Counts of a model that has no result cache of its own (the caches are a layer over it: ResultCachedLlm). */
export const NO_CACHE_STATS: CacheStats = Object.freeze({
  hits: 0,
  misses: 0,
  size: 0,
  shared: Object.freeze({ hits: 0, misses: 0, timeouts: 0, errors: 0 }),
});

/** The one model, as the rest of the bot sees it, whichever runtime runs it. */
export interface Llm {
  readonly modelName: string;
  /** Which compute backend runs the model, such as "cpu", "cuda", "vulkan" or "metal". */
  readonly backend: string;
  readonly contextSize: number;
  readonly runtime: ModelRuntimeInfo;
  readonly readiness: ModelReadiness;
  /**
   * Names the runtime kind, the label method, the model and the sentiment prompt: a cached result is reused only
   * under the same identity, so a reload or a reconnect to another model never answers from another's results.
   * Compared element by element; a runtime returns the same array until it changes.
   */
  readonly resultIdentity: readonly (string | number)[];
  readonly schedulerStats: Readonly<SchedulerStats>;
  readonly queueDepth: QueueDepth;
  /**
   * Work on the model now: on a server, the requests admitted and not yet settled (what the in-flight metric reads);
   * in-process, the generations holding a sequence and the classifications of the pass running.
   */
  readonly inFlight: number;
  /** The result caches' counts: NO_CACHE_STATS below the cache layer. */
  readonly cacheStats: CacheStats;
  classifySentiment(text: string, options?: ClassifyOptions): Promise<SentimentResult>;
  generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion>;
  /** Runs a task: interactive unless `options.priority` says otherwise (a label task the bot runs itself). */
  runTask(task: Task, input: string, options?: ClassifyOptions): Promise<TaskOutcome>;
  /**
   * Switches to new prompts and tasks between two passes: the classifiers' prefixes are evaluated anew, cached
   * results of the old prompt are dropped, and warm chat sequences stay.
   */
  reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload>;
  /** The text's length in the model's tokens; asynchronous because a server tokenises over the network. */
  countTokens(text: string, signal?: AbortSignal): Promise<number>;
  /** Cuts text to at most `maxTokens` tokens, at a token boundary. */
  truncateToTokens(text: string, maxTokens: number, signal?: AbortSignal): Promise<string>;
  /**
   * Refuses new model work and cancels what waits or runs, at once; the model stays loaded (so callers can still
   * count tokens while they store what was interrupted) until `close`.
   */
  interrupt(): void;
  /** Interrupts, waits for the pass in flight, and frees the model. */
  close(): Promise<void>;
}
