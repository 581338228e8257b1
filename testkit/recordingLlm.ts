import type { ChatCompletion, Llm, TaskOutcome } from "../src/llm/llm.js";
import type { ChatTurn, Prompts } from "../src/prompts/prompts.js";
import type { Task } from "../src/tasks/tasks.js";

/** One call the bot made at the model's seam, with exactly the input it handed over. */
export type ModelCall =
  | { readonly kind: "sentiment"; readonly text: string }
  | { readonly kind: "chat"; readonly turns: readonly ChatTurn[] }
  | { readonly kind: "task"; readonly task: string; readonly input: string };

/**
 * The real model behind a recorder: every call goes through to it unchanged, and its input is kept, so that a test
 * asserts what the model received rather than a log field computed beside the call. Handed to `assemble` as its
 * `decorateLlm` option; no module of the bot is replaced.
 */
export class RecordingLlm implements Llm {
  readonly calls: ModelCall[] = [];
  /** What each task call answered (the labels and how they were read, or the text), in the order answered. */
  readonly taskAnswers: Array<{
    readonly task: string;
    readonly input: string;
    readonly outcome: TaskOutcome;
  }> = [];
  /**
   * What each chat call answered, in the order answered: its text, and how much of the prompt it evaluated; `at`
   * is when the generation ended (Date.now()), before anything the bot does with it.
   */
  readonly chatAnswers: Array<{
    readonly turns: readonly ChatTurn[];
    readonly completion: ChatCompletion;
    readonly at: number;
  }> = [];

  constructor(private readonly inner: Llm) {}

  get modelName() {
    return this.inner.modelName;
  }
  get backend() {
    return this.inner.backend;
  }
  get contextSize() {
    return this.inner.contextSize;
  }
  get schedulerStats() {
    return this.inner.schedulerStats;
  }
  get queueDepth() {
    return this.inner.queueDepth;
  }
  get inFlight() {
    return this.inner.inFlight;
  }
  get cacheStats() {
    return this.inner.cacheStats;
  }
  get runtime() {
    return this.inner.runtime;
  }
  get readiness() {
    return this.inner.readiness;
  }
  get resultIdentity() {
    return this.inner.resultIdentity;
  }

  classifySentiment(...args: Parameters<Llm["classifySentiment"]>) {
    this.calls.push({ kind: "sentiment", text: args[0] });
    return this.inner.classifySentiment(...args);
  }
  async generateChat(...args: Parameters<Llm["generateChat"]>) {
    this.calls.push({ kind: "chat", turns: args[0] });
    const completion = await this.inner.generateChat(...args);
    this.chatAnswers.push({ turns: args[0], completion, at: Date.now() });
    return completion;
  }
  async runTask(...args: Parameters<Llm["runTask"]>) {
    this.calls.push({ kind: "task", task: args[0].name, input: args[1] });
    const outcome = await this.inner.runTask(...args);
    this.taskAnswers.push({ task: args[0].name, input: args[1], outcome });
    return outcome;
  }
  reload(prompts: Prompts, tasks: readonly Task[]) {
    return this.inner.reload(prompts, tasks);
  }
  countTokens(...args: Parameters<Llm["countTokens"]>) {
    return this.inner.countTokens(...args);
  }
  truncateToTokens(...args: Parameters<Llm["truncateToTokens"]>) {
    return this.inner.truncateToTokens(...args);
  }
  interrupt() {
    this.inner.interrupt();
  }
  close() {
    return this.inner.close();
  }

  /** The calls of one kind, in order. */
  callsOf<K extends ModelCall["kind"]>(kind: K): Array<Extract<ModelCall, { kind: K }>> {
    return this.calls.filter((call): call is Extract<ModelCall, { kind: K }> => call.kind === kind);
  }
}
