import type { Logger } from "../platform/logger.js";
import type { ChatTurn, Prompts } from "../prompts/prompts.js";
import type { Task } from "../tasks/tasks.js";
import type {
  CacheStats,
  ChatCompletion,
  ClassifyOptions,
  GenerateChatOptions,
  Llm,
  ModelReadiness,
  ModelRuntimeInfo,
  PromptReload,
  QueueDepth,
  SchedulerStats,
  SentimentResult,
  SharedCacheStats,
  TaskOutcome,
} from "./llm.js";
import { SentimentCache } from "./sentimentCache.js";
import { cacheNamespace, LayeredSentimentCache, type SharedResultStore } from "./sharedResultCache.js";

export interface ResultCacheOptions {
  readonly logger: Logger;
  /** Results the process keeps for repeated short messages; 0 turns its own cache off. */
  readonly cacheSize: number;
  /** A result cache shared with other processes, and how long a lookup in it may take. */
  readonly shared?: { readonly store: SharedResultStore; readonly budgetMs: number };
}

/** The caches of one result identity, and the identity they were made for. */
interface IdentifiedCache {
  readonly identity: readonly (string | number)[];
  readonly cache: LayeredSentimentCache;
}

/**
 * The sentiment result caches (the process's LRU, then the shared one) in front of any model. A repeated short
 * message skips the model, its queue and, on a server, the network. The caches belong to the model's result
 * identity: when it changes (a prompt reload, a server that came back with another model) they are replaced, and
 * their counts carried, so that the totals never go down. Every other call goes straight through.
 */
export class ResultCachedLlm implements Llm {
  private current: IdentifiedCache;
  /** Counts of the caches an identity change or a reload replaced. */
  private retired: { hits: number; misses: number; shared: SharedCacheStats } = {
    hits: 0,
    misses: 0,
    shared: { hits: 0, misses: 0, timeouts: 0, errors: 0 },
  };

  constructor(
    private readonly inner: Llm,
    private readonly options: ResultCacheOptions,
  ) {
    this.current = this.cachesFor(inner.resultIdentity);
  }

  get modelName(): string {
    return this.inner.modelName;
  }

  get backend(): string {
    return this.inner.backend;
  }

  get contextSize(): number {
    return this.inner.contextSize;
  }

  get runtime(): ModelRuntimeInfo {
    return this.inner.runtime;
  }

  get readiness(): ModelReadiness {
    return this.inner.readiness;
  }

  get resultIdentity(): readonly (string | number)[] {
    return this.inner.resultIdentity;
  }

  get schedulerStats(): Readonly<SchedulerStats> {
    return this.inner.schedulerStats;
  }

  get queueDepth(): QueueDepth {
    return this.inner.queueDepth;
  }

  get inFlight(): number {
    return this.inner.inFlight;
  }

  get cacheStats(): CacheStats {
    const { local, shared } = this.current.cache;
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
    const asked = this.caches();
    const cached = await asked.lookup(text);
    if (cached) return { ...cached, evaluatedTokens: 0, cached: true };
    const result = await this.inner.classifySentiment(text, options);
    // A result is kept only under the identity it was asked under: when the prompt or the model changed while the
    // model worked, nothing says which of the two read it.
    if (this.caches() === asked) asked.store(text, result);
    return result;
  }

  generateChat(turns: readonly ChatTurn[], options: GenerateChatOptions): Promise<ChatCompletion> {
    return this.inner.generateChat(turns, options);
  }

  runTask(task: Task, input: string, options?: ClassifyOptions): Promise<TaskOutcome> {
    return this.inner.runTask(task, input, options);
  }

  async reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload> {
    const reloaded = await this.inner.reload(prompts, tasks);
    // Replaced even when the identity stayed: a reload starts its results afresh, as it always has.
    this.replace(this.inner.resultIdentity);
    return reloaded;
  }

  countTokens(text: string, signal?: AbortSignal): Promise<number> {
    return this.inner.countTokens(text, signal);
  }

  truncateToTokens(text: string, maxTokens: number, signal?: AbortSignal): Promise<string> {
    return this.inner.truncateToTokens(text, maxTokens, signal);
  }

  interrupt(): void {
    this.inner.interrupt();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The caches of the model's identity now, made anew when it changed since the last call. */
  private caches(): LayeredSentimentCache {
    const identity = this.inner.resultIdentity;
    if (!sameIdentity(identity, this.current.identity)) this.replace(identity);
    return this.current.cache;
  }

  private replace(identity: readonly (string | number)[]): void {
    const { hits, misses, shared } = this.cacheStats;
    this.retired = { hits, misses, shared: { ...shared } };
    this.current = this.cachesFor(identity);
  }

  private cachesFor(identity: readonly (string | number)[]): IdentifiedCache {
    const { options } = this;
    const cache = new LayeredSentimentCache({
      local: new SentimentCache(options.cacheSize),
      shared: options.shared?.store,
      budgetMs: options.shared?.budgetMs ?? 0,
      namespace: cacheNamespace(identity),
      method: this.inner.runtime.method,
      logger: options.logger.child({ component: "result-cache" }),
    });
    return { identity, cache };
  }
}

/** Element by element, with the same array (a runtime's identity between changes) as the quick answer. */
function sameIdentity(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a === b || (a.length === b.length && a.every((part, index) => part === b[index]));
}
