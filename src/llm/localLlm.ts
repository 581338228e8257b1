import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import type { ChatTurn } from "../prompts.js";
import type { SentimentLabel } from "../sentimentLabels.js";
import { renderTaskTurns, type Task } from "../tasks.js";
import type { ChatCompletion } from "./chat.js";
import type { ChatPool } from "./chatPool.js";
import type { ClassifierPool } from "./classifierLane.js";
import type { CacheStats, ClassifyOptions, GenerateChatOptions, Llm, TaskOutcome } from "./llm.js";
import type { GenerationLease } from "./passModel.js";
import type { SamplerCollector } from "./samplerCollector.js";
import type { Scheduler, SchedulerStats } from "./scheduler.js";
import type { SentimentResult } from "./sentiment.js";
import type { LayeredSentimentCache } from "./sharedResultCache.js";

/** Free-text tasks are summaries and the like: a low temperature keeps them factual. */
const TEXT_TASK_TEMPERATURE = 0.3;
/** Room left for a text task's instructions and the chat template around its input. */
const TEXT_TASK_PROMPT_MARGIN = 256;

export interface LocalLlmParts {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly sentiment: ClassifierPool<SentimentLabel>;
  readonly tasks: ReadonlyMap<string, ClassifierPool<string>>;
  readonly chat: ChatPool;
  readonly cache: LayeredSentimentCache;
  readonly scheduler: Scheduler;
  readonly samplers: SamplerCollector;
}

/** The model in this process: llama.cpp's lanes driven by the pass scheduler, behind the result caches. */
export class LocalLlm implements Llm {
  constructor(
    private readonly parts: LocalLlmParts,
    readonly modelName: string,
  ) {}

  get backend(): string {
    const gpu = this.parts.llama.gpu;
    return gpu === false ? "cpu" : gpu;
  }

  get contextSize(): number {
    return this.parts.context.contextSize;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.parts.scheduler.stats;
  }

  get cacheStats(): CacheStats {
    const { local, shared } = this.parts.cache;
    return { hits: local.hits, misses: local.misses, size: local.size, shared };
  }

  async classifySentiment(text: string, options: ClassifyOptions = {}): Promise<SentimentResult> {
    // A repeated short message skips the queue and the model entirely.
    const cached = await this.parts.cache.lookup(text);
    if (cached) return { ...cached, evaluatedTokens: 0, cached: true };
    const result = await this.parts.scheduler.classify(this.parts.sentiment, text, {
      priority: options.priority ?? "background",
      ...(options.group === undefined ? {} : { group: options.group }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.parts.samplers.evaluated();
    this.parts.cache.store(text, result);
    return result;
  }

  async generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    const completion = await this.parts.scheduler.generate({
      start: () => this.lease(options.channelKey, turns, options),
      ...(options.onText ? { onText: options.onText } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.parts.samplers.evaluated();
    return completion;
  }

  async runTask(task: Task, input: string, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    const signal = options.signal ? { signal: options.signal } : {};
    const lane = this.parts.tasks.get(task.name);
    if (lane) {
      const result = await this.parts.scheduler.classify(lane, input, { priority: "interactive", ...signal });
      this.parts.samplers.evaluated();
      return { kind: "labels", result };
    }
    if (task.output.kind !== "text") throw new Error(`the task ${task.name} was not loaded with the model`);
    const maxTokens = task.output.maxTokens;
    // Long inputs (a channel's history) are cut so the prompt and the answer fit the context.
    const text = this.truncateToTokens(
      input,
      Math.max(64, this.contextSize - maxTokens - TEXT_TASK_PROMPT_MARGIN),
    );
    const turns = renderTaskTurns(task, text);
    const completion = await this.parts.scheduler.generate({
      start: () => this.lease(`task:${task.name}`, turns, { maxTokens, temperature: TEXT_TASK_TEMPERATURE }),
      ...signal,
    });
    this.parts.samplers.evaluated();
    return { kind: "text", text: completion.text, generatedTokens: completion.generatedTokens };
  }

  countTokens(text: string): number {
    return this.parts.model.tokenize(text, false).length;
  }

  truncateToTokens(text: string, maxTokens: number): string {
    const tokens = this.parts.model.tokenize(text, false);
    if (tokens.length <= maxTokens) return text;
    return this.parts.model.detokenize(tokens.slice(0, maxTokens));
  }

  interrupt(): void {
    this.parts.scheduler.close();
  }

  async close(): Promise<void> {
    this.parts.scheduler.close();
    await this.parts.scheduler.whenIdle();
    await this.parts.context.dispose();
    await this.parts.model.dispose();
    await this.parts.llama.dispose();
  }

  private lease(
    key: string,
    turns: readonly ChatTurn[],
    options: { maxTokens: number; temperature: number },
  ): GenerationLease<ChatCompletion> | undefined {
    const lease = this.parts.chat.tryLease(key);
    if (!lease) return undefined;
    try {
      const generation = lease.runner.start(turns, options);
      return { generation, release: () => lease.release() };
    } catch (error) {
      lease.release();
      throw error;
    }
  }
}
