import { textTaskInputTokens } from "../../inputBudget.js";
import type { Logger } from "../../logger.js";
import type { ChatTurn, Prompts } from "../../prompts.js";
import { renderTaskTurns, type Task } from "../../tasks.js";
import type {
  CacheStats,
  ChatCompletion,
  ClassifyOptions,
  GenerateChatOptions,
  Llm,
  PassReport,
  PromptReload,
  QueueDepth,
  SchedulerStats,
  SentimentResult,
  SharedCacheStats,
  TaskOutcome,
} from "../llm.js";
import { SentimentCache } from "../sentimentCache.js";
import { cacheNamespace, LayeredSentimentCache, type SharedResultStore } from "../sharedResultCache.js";
import type { GenerationOptions, PassRuntime } from "./passModel.js";
import { Scheduler } from "./scheduler.js";

/** Free-text tasks are summaries and the like: a low temperature keeps them factual. */
const TEXT_TASK_TEMPERATURE = 0.3;

export interface SchedulingOptions {
  readonly logger: Logger;
  /** While a reply streams, it keeps at least this share of its speed alone (0 to 1). */
  readonly chatSpeedFloor: number;
  readonly sentiment: {
    readonly queueSize: number;
    readonly maxWaitMs: number;
    readonly cacheSize: number;
  };
  /** A result cache shared with other processes, and how long a lookup in it may take. */
  readonly sharedCache?: { readonly store: SharedResultStore; readonly budgetMs: number };
  /** Told about every forward pass (for metrics). */
  readonly onPass?: (pass: PassReport) => void;
}

/**
 * The model as the bot uses it: any pass runtime, driven by the pass scheduler and fronted by the sentiment
 * result caches. It owns the runtime and disposes of it on close.
 */
export class ScheduledLlm implements Llm {
  private readonly scheduler: Scheduler;
  private cache: LayeredSentimentCache;
  /** Counts of the caches a reload replaced, so that the totals never go down. */
  private retired: { hits: number; misses: number; shared: SharedCacheStats } = {
    hits: 0,
    misses: 0,
    shared: { hits: 0, misses: 0, timeouts: 0, errors: 0 },
  };

  constructor(
    private readonly runtime: PassRuntime,
    private readonly options: SchedulingOptions,
  ) {
    const { logger } = options;
    this.scheduler = new Scheduler({
      logger: logger.child({ component: "scheduler" }),
      maxBackgroundQueue: options.sentiment.queueSize,
      maxBackgroundAgeMs: options.sentiment.maxWaitMs,
      chatSpeedFloor: options.chatSpeedFloor,
      maxPassTokens: runtime.maxPassTokens,
      ...(options.onPass ? { onPass: options.onPass } : {}),
    });
    this.cache = this.resultCache();
  }

  /** The result caches for the runtime's current sentiment prompt: results of another prompt are never reused. */
  private resultCache(): LayeredSentimentCache {
    const { options, runtime } = this;
    return new LayeredSentimentCache({
      local: new SentimentCache(options.sentiment.cacheSize),
      shared: options.sharedCache?.store,
      budgetMs: options.sharedCache?.budgetMs ?? 0,
      namespace: cacheNamespace(runtime.resultIdentity),
      method: runtime.sentimentMethod,
      logger: options.logger.child({ component: "result-cache" }),
    });
  }

  get modelName(): string {
    return this.runtime.modelName;
  }

  get backend(): string {
    return this.runtime.backend;
  }

  get contextSize(): number {
    return this.runtime.contextSize;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.scheduler.stats;
  }

  get queueDepth(): QueueDepth {
    return this.scheduler.queueDepth;
  }

  get cacheStats(): CacheStats {
    const { local, shared } = this.cache;
    const { retired } = this;
    return {
      hits: retired.hits + local.hits,
      misses: retired.misses + local.misses,
      size: local.size,
      shared: {
        hits: retired.shared.hits + shared.hits,
        misses: retired.shared.misses + shared.misses,
        timeouts: retired.shared.timeouts + shared.timeouts,
        errors: retired.shared.errors + shared.errors,
      },
    };
  }

  async classifySentiment(text: string, options: ClassifyOptions = {}): Promise<SentimentResult> {
    // A repeated short message skips the queue and the model entirely.
    const cached = await this.cache.lookup(text);
    if (cached) return { ...cached, evaluatedTokens: 0, cached: true };
    const result = await this.scheduler.classify(this.runtime.sentiment, text, {
      priority: options.priority ?? "background",
      ...(options.group === undefined ? {} : { group: options.group }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.runtime.evaluated();
    this.cache.store(text, result);
    return result;
  }

  async generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    const completion = await this.scheduler.generate({
      start: () =>
        this.runtime.leaseGeneration({ kind: "conversation", key: options.channelKey }, turns, options),
      ...(options.onText ? { onText: options.onText } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.runtime.evaluated();
    return completion;
  }

  async runTask(task: Task, input: string, options: ClassifyOptions = {}): Promise<TaskOutcome> {
    const signal = options.signal ? { signal: options.signal } : {};
    const lane = this.runtime.taskLane(task.name);
    if (lane) {
      const result = await this.scheduler.classify(lane, input, {
        priority: options.priority ?? "interactive",
        ...(options.group === undefined ? {} : { group: options.group }),
        ...(options.shedLast ? { shedLast: true } : {}),
        ...signal,
      });
      this.runtime.evaluated();
      return { kind: "labels", result };
    }
    if (task.output.kind !== "text") throw new Error(`the task ${task.name} was not loaded with the model`);
    const maxTokens = task.output.maxTokens;
    // A channel's transcript was read within this budget already (Pipeline.taskInputBudget); the cut holds it for
    // any other input, so the prompt and the answer always fit the context.
    const text = this.truncateToTokens(input, textTaskInputTokens(this.contextSize, maxTokens));
    const turns = renderTaskTurns(task, text);
    const generation: GenerationOptions = { maxTokens, temperature: TEXT_TASK_TEMPERATURE };
    const completion = await this.scheduler.generate({
      // A task takes any free sequence, and never the last one: it never holds a mention back (see ChatPool).
      start: () => this.runtime.leaseGeneration({ kind: "task", key: task.name }, turns, generation),
      ...signal,
    });
    this.runtime.evaluated();
    return { kind: "text", text: completion.text, generatedTokens: completion.generatedTokens };
  }

  async reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload> {
    const reloaded = await this.scheduler.exclusive(() => this.runtime.reload(prompts, tasks));
    const { hits, misses, shared } = this.cacheStats;
    this.retired = { hits, misses, shared: { ...shared } };
    this.cache = this.resultCache();
    return reloaded;
  }

  countTokens(text: string): number {
    return this.runtime.countTokens(text);
  }

  truncateToTokens(text: string, maxTokens: number): string {
    return this.runtime.truncateToTokens(text, maxTokens);
  }

  interrupt(): void {
    this.scheduler.close();
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await this.scheduler.whenIdle();
    await this.runtime.dispose();
  }
}
