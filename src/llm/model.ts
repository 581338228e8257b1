import { open } from "node:fs/promises";
import { basename } from "node:path";
import {
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  resolveModelFile,
} from "node-llama-cpp";
import { errorMessage, ModelLoadError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { ChatTurn, Prompts } from "../prompts.js";
import { isLabelTask, renderTaskTurns, type Task } from "../tasks.js";
import type { ChatCompletion } from "./chat.js";
import { ChatPool } from "./chatPool.js";
import { LabelClassifier, type LabelResult } from "./labelClassifier.js";
import { type JobPriority, Scheduler, type SchedulerStats } from "./scheduler.js";
import {
  createSentimentClassifier,
  type SentimentClassifier,
  type SentimentMethod,
  type SentimentResult,
} from "./sentiment.js";
import { SentimentCache } from "./sentimentCache.js";

export interface LoadModelOptions {
  /** A local .gguf file; when undefined, `uri` is resolved (and downloaded once) into `directory`. */
  readonly path: string | undefined;
  readonly uri: string;
  readonly directory: string;
  readonly threads: number;
  readonly contextSize: number;
  readonly chatSequences: number;
  readonly batchSize: number;
  readonly sentiment: {
    readonly queueSize: number;
    readonly maxWaitMs: number;
    readonly cacheSize: number;
  };
  readonly prompts: Prompts;
  /** Tasks defined in prompts/tasks: each label task gets its own cached-prefix sequence. */
  readonly tasks?: readonly Task[];
  readonly logger: Logger;
  /** Show node-llama-cpp's download progress bar (on for the bot, off in tests). */
  readonly showDownloadProgress?: boolean;
}

export interface ClassifyOptions {
  readonly signal?: AbortSignal;
  readonly priority?: JobPriority;
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

/** Free-text tasks are summaries and the like: a low temperature keeps them factual. */
const TEXT_TASK_TEMPERATURE = 0.3;

/** The one model, as the rest of the bot sees it. Everything goes through the scheduler. */
export interface Llm {
  readonly modelName: string;
  readonly sentimentMethod: SentimentMethod;
  readonly contextSize: number;
  readonly schedulerStats: Readonly<SchedulerStats>;
  readonly cacheStats: { readonly hits: number; readonly misses: number; readonly size: number };
  classifySentiment(text: string, options?: ClassifyOptions): Promise<SentimentResult>;
  generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion>;
  /** Runs a prompt-defined task on an input, as interactive work. */
  runTask(task: Task, input: string, options?: { signal?: AbortSignal }): Promise<TaskOutcome>;
  countTokens(text: string): number;
  /** Cuts text to at most `maxTokens` tokens, at a token boundary. */
  truncateToTokens(text: string, maxTokens: number): string;
  /** Refuses new work, aborts what is running, and frees the model. */
  close(): Promise<void>;
}

/** Loads the model and builds the one owner of it. The only place that creates a Llama, model or context. */
export async function loadModel(options: LoadModelOptions): Promise<LocalLlm> {
  const { logger } = options;
  const modelPath = await resolveModelPath(options);
  await assertGguf(modelPath);
  const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      const text = message.trim();
      if (text !== "") logger.debug({ llamaLevel: level }, text);
    },
  });
  let model: LlamaModel | undefined;
  try {
    model = await llama.loadModel({ modelPath });
    // One sequence for sentiment, which keeps its cached prefix forever, and the warm chat sequences.
    const labelTasks = (options.tasks ?? []).filter(isLabelTask);
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: 1 + options.chatSequences + labelTasks.length,
      threads: options.threads,
      batchSize: Math.min(options.batchSize, options.contextSize),
      failedCreationRemedy: false,
    });
    const sentimentSequence = context.getSequence();
    const chat = new ChatPool(context, options.chatSequences);
    const sentiment = await createSentimentClassifier({
      llama,
      model,
      sequence: sentimentSequence,
      chatWrapper: chat.any.chatWrapper,
      prompts: options.prompts,
    });
    const taskClassifiers = new Map<string, LabelClassifier<string>>();
    for (const task of labelTasks) {
      const labels = task.output.labels;
      taskClassifiers.set(
        task.name,
        await LabelClassifier.create({
          llama,
          model,
          sequence: context.getSequence(),
          chatWrapper: chat.any.chatWrapper,
          labels,
          tieBreak: labels[0] ?? "",
          renderTurns: (input) => renderTaskTurns(task, input),
        }),
      );
    }
    const scheduler = new Scheduler({
      logger: logger.child({ component: "scheduler" }),
      maxBackgroundQueue: options.sentiment.queueSize,
      maxBackgroundAgeMs: options.sentiment.maxWaitMs,
    });
    const cache = new SentimentCache(options.sentiment.cacheSize);
    const llm = new LocalLlm(
      { llama, model, context, sentiment, cache, chat, scheduler, taskClassifiers },
      basename(modelPath),
    );
    logger.info(
      {
        model: llm.modelName,
        threads: options.threads,
        contextSize: context.contextSize,
        chatWrapper: chat.any.wrapperName,
        chatSequences: options.chatSequences,
        batchSize: context.batchSize,
        sentimentMethod: sentiment.method,
        sentimentPrefixTokens: sentiment.prefixTokenCount,
        tasks: (options.tasks ?? []).map((task) => task.name),
      },
      "model loaded",
    );
    return llm;
  } catch (error) {
    await model?.dispose();
    await llama.dispose();
    throw new ModelLoadError(
      modelPath,
      `The model file ${modelPath} could not be loaded (${errorMessage(error)}). It may be truncated or not a supported GGUF model: delete it and start again to re-download, or point MODEL_PATH at another .gguf file.`,
      { cause: error },
    );
  }
}

async function resolveModelPath(options: LoadModelOptions): Promise<string> {
  if (options.path !== undefined) return options.path;
  try {
    return await resolveModelFile(options.uri, {
      directory: options.directory,
      cli: options.showDownloadProgress ?? false,
    });
  } catch (error) {
    throw new ModelLoadError(
      options.uri,
      `Could not get the model ${options.uri} into ${options.directory} (${errorMessage(error)}). Check your network, or download a .gguf file yourself and set MODEL_PATH to it.`,
      { cause: error },
    );
  }
}

/** Fails fast, with a clear message, on a missing file or one that is not GGUF at all. */
async function assertGguf(path: string): Promise<void> {
  let magic: Buffer;
  try {
    const file = await open(path, "r");
    try {
      magic = Buffer.alloc(4);
      await file.read(magic, 0, 4, 0);
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new ModelLoadError(
      path,
      `The model file ${path} cannot be read (${errorMessage(error)}). Set MODEL_PATH to an existing .gguf file, or unset it to download the default model.`,
      { cause: error },
    );
  }
  if (magic.toString("latin1") !== "GGUF") {
    throw new ModelLoadError(
      path,
      `The model file ${path} is not a GGUF file. moodbot runs GGUF models such as Qwen2.5-0.5B-Instruct Q8_0: set MODEL_PATH to a .gguf file.`,
    );
  }
}

interface LocalLlmParts {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly sentiment: SentimentClassifier;
  readonly cache: SentimentCache;
  readonly chat: ChatPool;
  readonly scheduler: Scheduler;
  readonly taskClassifiers: ReadonlyMap<string, LabelClassifier<string>>;
}

export class LocalLlm implements Llm {
  private readonly llama: Llama;
  private readonly model: LlamaModel;
  private readonly context: LlamaContext;
  private readonly sentiment: SentimentClassifier;
  private readonly cache: SentimentCache;
  private readonly chat: ChatPool;
  private readonly scheduler: Scheduler;
  private readonly taskClassifiers: ReadonlyMap<string, LabelClassifier<string>>;

  constructor(
    parts: LocalLlmParts,
    readonly modelName: string,
  ) {
    ({
      llama: this.llama,
      model: this.model,
      context: this.context,
      sentiment: this.sentiment,
      cache: this.cache,
      chat: this.chat,
      scheduler: this.scheduler,
      taskClassifiers: this.taskClassifiers,
    } = parts);
  }

  get sentimentMethod(): SentimentMethod {
    return this.sentiment.method;
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.scheduler.stats;
  }

  get cacheStats() {
    return { hits: this.cache.hits, misses: this.cache.misses, size: this.cache.size };
  }

  async classifySentiment(text: string, options: ClassifyOptions = {}): Promise<SentimentResult> {
    // A repeated short message skips the queue and the model entirely.
    const cached = this.cache.get(text);
    if (cached) return { ...cached, evaluatedTokens: 0, cached: true };
    const result = await this.scheduler.run(
      "sentiment",
      options.priority ?? "background",
      (signal) => this.sentiment.classify(text, signal),
      options.signal,
    );
    this.cache.set(text, result);
    return result;
  }

  generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    return this.scheduler.run(
      "chat",
      "interactive",
      (signal) =>
        this.chat.acquire(options.channelKey).generate(turns, {
          maxTokens: options.maxTokens,
          temperature: options.temperature,
          signal,
          ...(options.onText ? { onText: options.onText } : {}),
        }),
      options.signal,
    );
  }

  runTask(task: Task, input: string, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    const classifier = this.taskClassifiers.get(task.name);
    if (classifier) {
      return this.scheduler.run(
        `task:${task.name}`,
        "interactive",
        async (signal) => ({ kind: "labels", result: await classifier.classify(input, signal) }),
        options.signal,
      );
    }
    if (task.output.kind !== "text") throw new Error(`the task ${task.name} was not loaded with the model`);
    const maxTokens = task.output.maxTokens;
    // Long inputs (a channel's history) are cut so the prompt and the answer fit the context.
    const text = this.truncateToTokens(input, Math.max(64, this.contextSize - maxTokens - 256));
    return this.scheduler.run(
      `task:${task.name}`,
      "interactive",
      async (signal) => {
        const completion = await this.chat
          .acquire(`task:${task.name}`)
          .generate(renderTaskTurns(task, text), { maxTokens, temperature: TEXT_TASK_TEMPERATURE, signal });
        return { kind: "text", text: completion.text, generatedTokens: completion.generatedTokens };
      },
      options.signal,
    );
  }

  countTokens(text: string): number {
    return this.model.tokenize(text, false).length;
  }

  truncateToTokens(text: string, maxTokens: number): string {
    const tokens = this.model.tokenize(text, false);
    if (tokens.length <= maxTokens) return text;
    return this.model.detokenize(tokens.slice(0, maxTokens));
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await this.scheduler.whenIdle();
    this.chat.dispose();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
