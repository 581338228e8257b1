import type { Logger } from "../../platform/logger.js";
import type { ChatTurn, Prompts } from "../../prompts/prompts.js";
import { renderTaskTurns, type Task } from "../../tasks/tasks.js";
import { textTaskInputTokens } from "../../text/inputBudget.js";
import {
  type CacheStats,
  type ChatCompletion,
  type ClassifyOptions,
  type GenerateChatOptions,
  type Llm,
  type ModelReadiness,
  type ModelRuntimeInfo,
  NO_CACHE_STATS,
  type PassReport,
  type PromptReload,
  type QueueDepth,
  type SchedulerStats,
  type SentimentResult,
  type TaskOutcome,
} from "../llm.js";
import type { GenerationOptions, PassRuntime } from "./passModel.js";
import { Scheduler } from "./scheduler.js";

/** Free-text tasks are summaries and the like: a low temperature keeps them factual. */
const TEXT_TASK_TEMPERATURE = 0.3;
/** A model in the bot's own process is ready once loaded: nothing between them can fail. */
const READY: ModelReadiness = Object.freeze({ ready: true });

export interface SchedulingOptions {
  readonly logger: Logger;
  /** While a reply streams, it keeps at least this share of its speed alone (0 to 1). */
  readonly chatSpeedFloor: number;
  /** Admission limits of background classifications (mood reactions). */
  readonly sentiment: {
    readonly queueSize: number;
    readonly maxWaitMs: number;
  };
  /** Told about every forward pass (for metrics). */
  readonly onPass?: (pass: PassReport) => void;
}

/**
 * The in-process model: any pass runtime, driven by the pass scheduler. It owns the runtime and disposes of it on
 * close. The result caches are a layer over it (ResultCachedLlm), as over any other runtime.
 */
export class ScheduledLlm implements Llm {
  private readonly scheduler: Scheduler;
  /** Kept until the sentiment prompt changes, so that the caches above compare one array by reference. */
  private identity: readonly (string | number)[];

  constructor(
    private readonly passRuntime: PassRuntime,
    options: SchedulingOptions,
  ) {
    const { logger } = options;
    this.scheduler = new Scheduler({
      logger: logger.child({ component: "scheduler" }),
      maxBackgroundQueue: options.sentiment.queueSize,
      maxBackgroundAgeMs: options.sentiment.maxWaitMs,
      chatSpeedFloor: options.chatSpeedFloor,
      maxPassTokens: passRuntime.maxPassTokens,
      ...(options.onPass ? { onPass: options.onPass } : {}),
    });
    this.identity = this.currentIdentity();
  }

  /** The kind and the method come first: no server's result, nor another method's, is taken for this one's. */
  private currentIdentity(): readonly (string | number)[] {
    return ["in-process", this.passRuntime.sentimentMethod, ...this.passRuntime.resultIdentity];
  }

  get modelName(): string {
    return this.passRuntime.modelName;
  }

  get backend(): string {
    return this.passRuntime.backend;
  }

  get contextSize(): number {
    return this.passRuntime.contextSize;
  }

  get runtime(): ModelRuntimeInfo {
    return {
      kind: "in-process",
      method: this.passRuntime.sentimentMethod,
      model: this.passRuntime.modelName,
    };
  }

  get readiness(): ModelReadiness {
    return READY;
  }

  get resultIdentity(): readonly (string | number)[] {
    return this.identity;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.scheduler.stats;
  }

  get queueDepth(): QueueDepth {
    return this.scheduler.queueDepth;
  }

  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  get cacheStats(): CacheStats {
    return NO_CACHE_STATS;
  }

  async classifySentiment(text: string, options: ClassifyOptions = {}): Promise<SentimentResult> {
    const result = await this.scheduler.classify(this.passRuntime.sentiment, text, {
      priority: options.priority ?? "background",
      ...(options.group === undefined ? {} : { group: options.group }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.passRuntime.evaluated();
    return result;
  }

  async generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    const completion = await this.scheduler.generate({
      start: () =>
        this.passRuntime.leaseGeneration({ kind: "conversation", key: options.channelKey }, turns, options),
      ...(options.onText ? { onText: options.onText } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.passRuntime.evaluated();
    return completion;
  }

  async runTask(task: Task, input: string, options: ClassifyOptions = {}): Promise<TaskOutcome> {
    const signal = options.signal ? { signal: options.signal } : {};
    const lane = this.passRuntime.taskLane(task.name);
    if (lane) {
      const result = await this.scheduler.classify(lane, input, {
        priority: options.priority ?? "interactive",
        ...(options.group === undefined ? {} : { group: options.group }),
        ...(options.shedLast ? { shedLast: true } : {}),
        ...signal,
      });
      this.passRuntime.evaluated();
      return { kind: "labels", result };
    }
    if (task.output.kind !== "text") throw new Error(`the task ${task.name} was not loaded with the model`);
    const maxTokens = task.output.maxTokens;
    // A channel's transcript was read within this budget already (Pipeline.taskInputBudget); the cut holds it for
    // any other input, so the prompt and the answer always fit the context.
    const text = this.passRuntime.truncateToTokens(input, textTaskInputTokens(this.contextSize, maxTokens));
    const turns = renderTaskTurns(task, text);
    const generation: GenerationOptions = { maxTokens, temperature: TEXT_TASK_TEMPERATURE };
    const completion = await this.scheduler.generate({
      // A task takes any free sequence, and never the last one: it never holds a mention back (see ChatPool).
      start: () => this.passRuntime.leaseGeneration({ kind: "task", key: task.name }, turns, generation),
      ...signal,
    });
    this.passRuntime.evaluated();
    return { kind: "text", text: completion.text, generatedTokens: completion.generatedTokens };
  }

  async reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload> {
    const reloaded = await this.scheduler.exclusive(() => this.passRuntime.reload(prompts, tasks));
    this.identity = this.currentIdentity();
    return reloaded;
  }

  // The tokenizer runs synchronously in this process: a signal can only stop a count that has not started.
  async countTokens(text: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    return this.passRuntime.countTokens(text);
  }

  async truncateToTokens(text: string, maxTokens: number, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    return this.passRuntime.truncateToTokens(text, maxTokens);
  }

  interrupt(): void {
    this.scheduler.close();
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await this.scheduler.whenIdle();
    await this.passRuntime.dispose();
  }
}
