import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import type { SentimentLabel } from "../../platform/sentimentLabels.js";
import type { ChatTurn, Prompts } from "../../prompts/prompts.js";
import type { Task } from "../../tasks/tasks.js";
import type { ChatCompletion, LabelMethod, LabelResult, PromptReload } from "../llm.js";
import type { ChatPool } from "./chatPool.js";
import type { ClassifierPool } from "./classifierLane.js";
import { buildClassifiers, type ClassifierSequences, type Classifiers } from "./classifierSet.js";
import type {
  ClassifierLane,
  GenerationLease,
  GenerationOptions,
  GenerationOwner,
  PassRuntime,
} from "./passModel.js";
import type { SamplerCollector } from "./samplerCollector.js";

export interface LlamaRuntimeParts {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly modelName: string;
  readonly sequences: ClassifierSequences;
  readonly classifiers: Classifiers;
  readonly chat: ChatPool;
  readonly samplers: SamplerCollector;
}

/** llama.cpp through node-llama-cpp: one context whose sequences are the sentiment, task and chat lanes. */
export class LlamaRuntime implements PassRuntime {
  private classifiers: Classifiers;

  constructor(private readonly parts: LlamaRuntimeParts) {
    this.classifiers = parts.classifiers;
  }

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
    return this.classifiers.sentiment;
  }

  get sentimentMethod(): LabelMethod {
    return this.sentiment.template.method;
  }

  get resultIdentity(): readonly (string | number)[] {
    return [this.parts.modelName, ...this.sentiment.template.promptTokens];
  }

  /** The chat wrapper node-llama-cpp chose for the model (it renders every prompt). */
  get chatWrapperName(): string {
    return this.parts.chat.any.wrapperName;
  }

  /** Tokens of the sentiment prompt that every classification reuses from the cache. */
  get sentimentPrefixTokens(): number {
    return this.sentiment.template.prefixTokenCount;
  }

  taskLane(name: string): ClassifierLane<LabelResult<string>> | undefined {
    return this.classifiers.tasks.get(name);
  }

  /**
   * Evaluates the new prompts' prefixes into the same sequences; called only with no pass in flight. The chat
   * sequences are left alone: a warm conversation whose tokens still match the new prompt is reused as it is.
   */
  async reload(prompts: Prompts, tasks: readonly Task[]): Promise<PromptReload> {
    // The tasks that have a sequence keep it: a new task never takes one from a task already served.
    const served = [...this.classifiers.tasks.keys()];
    this.classifiers = await buildClassifiers(this.parts.sequences, prompts, tasks, served);
    return {
      sentimentPrefixTokens: this.sentimentPrefixTokens,
      withoutSequence: this.classifiers.withoutSequence,
    };
  }

  leaseGeneration(
    owner: GenerationOwner,
    turns: readonly ChatTurn[],
    options: GenerationOptions,
  ): GenerationLease<ChatCompletion> | undefined {
    const lease = this.parts.chat.tryLease(owner);
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
