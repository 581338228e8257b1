import type { ChatTurn, Prompts } from "../../prompts/prompts.js";
import type { Task } from "../../tasks/tasks.js";
import type { ChatCompletion, LabelMethod, LabelResult, PromptReload, SentimentResult } from "../llm.js";

/**
 * The model at the level of forward passes: the seam between the scheduler, which decides what each pass carries,
 * and a runtime that evaluates it (llama.cpp in production, a fake with a cost model in the scheduler's tests).
 *
 * Work is sized when it is queued (how many tokens it adds to a pass), reserved, and then issued. Everything
 * the scheduler issues in one tick shares one decode: the runtime must batch evaluations that different
 * sequences issue together (node-llama-cpp does).
 */

/** What one step of a generation produced. */
export interface GenerationStep {
  /** Text this step added: empty while a multi-byte character is still incomplete. */
  readonly text: string;
  readonly done: boolean;
}

/** A generation on its own sequence, advanced one pass at a time. */
export interface Generation<R> {
  /** Tokens the next step adds to its pass: the prompt's unevaluated part before the first step, then 1. */
  readonly pendingTokens: number;
  readonly done: boolean;
  /** The result so far; final once `done`. */
  readonly completion: R;
  /** Evaluates this generation's share of one pass and samples its next token. */
  step(): Promise<GenerationStep>;
  /** Ends the generation early or after it is done; the sequence keeps what it evaluated. */
  close(): Promise<void>;
}

/** A classification ready to run: one pass's share on a sequence it holds until it settles. */
export interface Classification<R> {
  run(): Promise<R>;
  /** Gives the sequence back without running, when the scheduler decides to hold the work back. */
  release(): void;
}

/** A kind of classification (sentiment, a label task) and the sequences that can run it side by side. */
export interface ClassifierLane<R> {
  readonly name: string;
  /** How many of this lane's classifications one pass can carry. */
  readonly slots: number;
  /** Tokens `text` adds to a pass: the scheduler asks once, when the work is queued, and sizes passes with it. */
  tokensFor(text: string): number;
  /** Reserves a free sequence for `text`, or returns undefined while every one is busy. */
  prepare(text: string): Classification<R> | undefined;
}

/** A lease on a generation sequence; `release` gives it back once the generation is closed. */
export interface GenerationLease<R> {
  readonly generation: Generation<R>;
  release(): void;
}

/**
 * Who a generation is for, which decides how it leases a chat sequence: a conversation (a channel's chat) waits
 * for its own warm sequence, a text task takes any free one (see `ChatPool`).
 */
export interface GenerationOwner {
  readonly kind: "conversation" | "task";
  /** The channel's key, or the task's name. */
  readonly key: string;
}

/** The options of one generation. */
export interface GenerationOptions {
  readonly maxTokens: number;
  readonly temperature: number;
}

/**
 * A model runtime, as the pass scheduler (ScheduledLlm) sees it: the lanes a pass can carry, chat generations
 * on warm sequences, and token arithmetic. llama.cpp's is `LlamaRuntime`; another runtime fits by implementing
 * this and batching what different sequences issue together.
 */
export interface PassRuntime {
  readonly modelName: string;
  /** Which compute backend runs the model, such as "cpu" or "cuda". */
  readonly backend: string;
  readonly contextSize: number;
  /** Tokens one pass can carry (the batch size). */
  readonly maxPassTokens: number;
  readonly sentiment: ClassifierLane<SentimentResult>;
  /** How sentiment is read, for results that come from a cache. */
  readonly sentimentMethod: LabelMethod;
  /**
   * Names the model and the sentiment prompt; ScheduledLlm puts the runtime kind and the method before it to make
   * the Llm's result identity, so cached results of another model or prompt are never reused.
   */
  readonly resultIdentity: readonly (string | number)[];
  /** The lane of a label task loaded with the model, or undefined for any other task. */
  taskLane(name: string): ClassifierLane<LabelResult<string>> | undefined;
  /**
   * Leases a sequence for `owner`, the one that last served it when it can (so its evaluated turns are reused),
   * and prepares a generation of `turns` on it; or returns undefined while the owner must wait for one.
   */
  leaseGeneration(
    owner: GenerationOwner,
    turns: readonly ChatTurn[],
    options: GenerationOptions,
  ): GenerationLease<ChatCompletion> | undefined;
  countTokens(text: string): number;
  /** Cuts text to at most `maxTokens` tokens, at a token boundary. */
  truncateToTokens(text: string, maxTokens: number): string;
  /** Re-evaluates the classifiers' prompt prefixes for new prompts and tasks; called with no pass in flight. */
  reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload>;
  /** Called once per finished evaluation, for what the runtime has to do between them. */
  evaluated(): void;
  /** Frees the model; called once no pass is in flight. */
  dispose(): Promise<void>;
}
