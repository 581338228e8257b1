import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import type { ChatTurn } from "../prompts.js";
import type { SentimentLabel } from "../sentimentLabels.js";
import type { ChatPool } from "./chatPool.js";
import type { ClassifierPool } from "./classifierLane.js";
import type { ChatCompletion, LabelMethod, LabelResult } from "./llm.js";
import type { ClassifierLane, GenerationLease, GenerationOptions, PassRuntime } from "./passModel.js";
import type { SamplerCollector } from "./samplerCollector.js";

export interface LlamaRuntimeParts {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly modelName: string;
  readonly sentiment: ClassifierPool<SentimentLabel>;
  readonly tasks: ReadonlyMap<string, ClassifierPool<string>>;
  readonly chat: ChatPool;
  readonly samplers: SamplerCollector;
}

/** llama.cpp through node-llama-cpp: one context whose sequences are the sentiment, task and chat lanes. */
export class LlamaRuntime implements PassRuntime {
  constructor(private readonly parts: LlamaRuntimeParts) {}

  get modelName(): string {
    return this.parts.modelName;
  }

  get backend(): string {
    const gpu = this.parts.llama.gpu;
    return gpu === false ? "cpu" : gpu;
  }

  get contextSize(): number {
    return this.parts.context.contextSize;
  }

  get maxPassTokens(): number {
    return this.parts.context.batchSize;
  }

  get sentiment(): ClassifierPool<SentimentLabel> {
    return this.parts.sentiment;
  }

  get sentimentMethod(): LabelMethod {
    return this.parts.sentiment.template.method;
  }

  get resultIdentity(): readonly (string | number)[] {
    return [this.parts.modelName, ...this.parts.sentiment.template.promptTokens];
  }

  /** The chat wrapper node-llama-cpp chose for the model (it renders every prompt). */
  get chatWrapperName(): string {
    return this.parts.chat.any.wrapperName;
  }

  /** Tokens of the sentiment prompt that every classification reuses from the cache. */
  get sentimentPrefixTokens(): number {
    return this.parts.sentiment.template.prefixTokenCount;
  }

  taskLane(name: string): ClassifierLane<LabelResult<string>> | undefined {
    return this.parts.tasks.get(name);
  }

  leaseGeneration(
    key: string,
    turns: readonly ChatTurn[],
    options: GenerationOptions,
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

  countTokens(text: string): number {
    return this.parts.model.tokenize(text, false).length;
  }

  truncateToTokens(text: string, maxTokens: number): string {
    const tokens = this.parts.model.tokenize(text, false);
    if (tokens.length <= maxTokens) return text;
    return this.parts.model.detokenize(tokens.slice(0, maxTokens));
  }

  evaluated(): void {
    this.parts.samplers.evaluated();
  }

  async dispose(): Promise<void> {
    await this.parts.context.dispose();
    await this.parts.model.dispose();
    await this.parts.llama.dispose();
  }
}
