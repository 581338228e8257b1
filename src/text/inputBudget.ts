/*
 * How much of the context one input may take, in the model's tokens: a mention's message with its files, or the
 * transcript a channel task reads. The readers fill these budgets (src/discord/attachmentReader.ts) and the model layer cuts to
 * the same numbers, so that what is fetched is what is read.
 */

/**
 * What a budget is measured with: the model's own tokenizer (an `Llm` is one). Both methods may return a promise,
 * and every reader awaits them: on a model server, counting is a request.
 */
export interface TokenMeter {
  countTokens(text: string): number | Promise<number>;
  /** The text cut to at most `maxTokens` tokens, at a token boundary; the text itself when it fits. */
  truncateToTokens(text: string, maxTokens: number): string | Promise<string>;
}

/**
 * A label task's or a mood reaction's input is cut to this many tokens: the opening carries the meaning, and the
 * context never overflows. Every runtime cuts to it.
 */
export const DEFAULT_MESSAGE_TOKENS = 256;

/** The room one input has in a prompt, and the tokenizer that measures it. */
export interface ReadingBudget {
  readonly tokens: number;
  readonly meter: TokenMeter;
}

/** A mention's message, files included, takes at most this share of the context: history and the reply keep room. */
export const MESSAGE_SHARE_OF_CONTEXT = 0.25;
/** Room left for a text task's instructions and the chat template around its input. */
export const TEXT_TASK_PROMPT_MARGIN = 256;
/** A text task's input never gets less than this, even on a context too small for its answer. */
const MIN_TASK_INPUT_TOKENS = 64;

/** The tokens a mention's message and its files may fill together. */
export function messageBudgetTokens(contextSize: number): number {
  return Math.floor(contextSize * MESSAGE_SHARE_OF_CONTEXT);
}

/** The tokens a text task's input (a channel's transcript, files included) may fill beside its answer. */
export function textTaskInputTokens(contextSize: number, answerTokens: number): number {
  return Math.max(MIN_TASK_INPUT_TOKENS, contextSize - answerTokens - TEXT_TASK_PROMPT_MARGIN);
}
