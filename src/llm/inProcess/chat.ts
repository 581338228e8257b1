import {
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaContextSequence,
  resolveChatWrapper,
  type Token,
} from "node-llama-cpp";
import type { ChatTurn } from "../../prompts/prompts.js";
import type { ChatCompletion, ChatStopReason } from "../llm.js";
import { toChatHistory } from "./chatHistory.js";
import type { Generation, GenerationStep } from "./passModel.js";

export interface ChatOptions {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly signal?: AbortSignal;
  /** Called with each piece of reply text as it is generated. */
  readonly onText?: (text: string) => void;
}

/** LlamaChat's default: the last 64 generated tokens are penalised for repeating. */
const REPEAT_PENALTY_WINDOW = 64;
const REPEAT_PENALTY = 1.1;
const TOP_P = 0.9;
/** A detokenised piece that ends in U+FFFD is a multi-byte character cut between tokens: hold it back. */
const INCOMPLETE_CHARACTER = "\uFFFD";

/**
 * One chat sequence and the model's own chat wrapper (QwenChatWrapper for Qwen models), which tokenises every turn's
 * text as plain text. Generation is driven one forward pass at a time (`start` returns a Generation whose `step`
 * is one decode), so the scheduler can put other sequences' work into the same pass. The evaluated prefix of the
 * sequence is reused when it matches the new prompt, so a follow-up in the same channel evaluates only the new
 * turns.
 */
export class ChatRunner {
  readonly chatWrapper: ChatWrapper;

  constructor(
    private readonly sequence: LlamaContextSequence,
    chatWrapper?: ChatWrapper,
  ) {
    this.chatWrapper = chatWrapper ?? resolveChatWrapper(sequence.model);
  }

  get wrapperName(): string {
    return this.chatWrapper.wrapperName;
  }

  /** Prepares a generation; nothing is evaluated until its first step. */
  start(turns: readonly ChatTurn[], options: Omit<ChatOptions, "signal" | "onText">): SequenceGeneration {
    const history: ChatHistoryItem[] = [...toChatHistory(turns), { type: "model", response: [] }];
    const { contextText, stopGenerationTriggers } = this.chatWrapper.generateContextState({
      chatHistory: history,
    });
    const model = this.sequence.model;
    const prompt = contextText.tokenize(model.tokenizer);
    const triggers = stopGenerationTriggers
      .map((trigger) => trigger.tokenize(model.tokenizer, "trimLeadingSpace"))
      .filter((tokens) => tokens.length > 0);
    return new SequenceGeneration(this.sequence, prompt, triggers, options);
  }

  /** Runs a whole generation on its own: for callers outside the scheduler (the bench, the eval, tests). */
  async generate(turns: readonly ChatTurn[], options: ChatOptions): Promise<ChatCompletion> {
    const generation = this.start(turns, options);
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const step = await generation.step();
        if (step.text !== "") options.onText?.(step.text);
        if (step.done) return generation.completion;
      }
    } finally {
      await generation.close();
    }
  }

  /** Forgets the evaluated state, so the next turn starts cold. */
  clear(): Promise<void> {
    return this.sequence.clearHistory();
  }
}

/**
 * A generation on one sequence. The first step evaluates whatever part of the prompt the sequence does not already
 * hold and samples the first token; each later step evaluates the previous token and samples the next.
 */
/** What node-llama-cpp's `evaluate` returns: one token per iteration, each iteration one decode. */
type TokenStream = ReturnType<LlamaContextSequence["evaluate"]>;

export class SequenceGeneration implements Generation<ChatCompletion> {
  private iterator: TokenStream | undefined;
  private readonly generated: Token[] = [];
  private emittedText = "";
  private promptTokensToEvaluate = 0;
  private stopReason: ChatStopReason | undefined;
  private closed = false;

  constructor(
    private readonly sequence: LlamaContextSequence,
    private readonly prompt: readonly Token[],
    private readonly stopTriggers: readonly (readonly Token[])[],
    private readonly options: Omit<ChatOptions, "signal" | "onText">,
  ) {
    // Known before the first step, so the scheduler can size the pass that carries the prompt.
    const { firstDifferentIndex } = sequence.compareContextTokens([...prompt]);
    // At least one prompt token is always evaluated: its logits give the first reply token.
    this.promptTokensToEvaluate = prompt.length - Math.min(firstDifferentIndex, prompt.length - 1);
  }

  get pendingTokens(): number {
    return this.iterator === undefined ? this.promptTokensToEvaluate : 1;
  }

  get done(): boolean {
    return this.stopReason !== undefined;
  }

  get completion(): ChatCompletion {
    return {
      text: this.emittedText.trim(),
      stopReason: this.stopReason ?? "maxTokens",
      generatedTokens: this.generated.length,
      evaluatedPromptTokens: this.promptTokensToEvaluate,
    };
  }

  async step(): Promise<GenerationStep> {
    if (this.stopReason !== undefined) return { text: "", done: true };
    const iterator = this.iterator ?? (await this.begin());
    const next = await iterator.next();
    if (next.done) return this.stop("eogToken");
    if (this.sequence.model.isEogToken(next.value)) return this.stop("eogToken");
    this.generated.push(next.value);
    const trigger = this.stopTriggers.find((tokens) => endsWith(this.generated, tokens));
    if (trigger) {
      this.generated.splice(this.generated.length - trigger.length);
      const text = this.takeNewText(true);
      this.stopReason = "stopTrigger";
      return { text, done: true };
    }
    if (this.generated.length >= this.options.maxTokens) {
      const text = this.takeNewText(true);
      this.stopReason = "maxTokens";
      return { text, done: true };
    }
    return { text: this.takeNewText(false), done: false };
  }

  /** Ends the underlying evaluation: the sequence keeps what was evaluated, for the channel's next turn. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.iterator?.return();
  }

  private async begin(): Promise<TokenStream> {
    const { sequence, prompt } = this;
    const keep = prompt.length - this.promptTokensToEvaluate;
    if (sequence.nextTokenIndex > keep) {
      await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
    }
    this.iterator = sequence.evaluate(prompt.slice(keep), {
      temperature: this.options.temperature,
      topP: TOP_P,
      repeatPenalty: {
        punishTokens: () => this.generated.slice(-REPEAT_PENALTY_WINDOW),
        penalty: REPEAT_PENALTY,
      },
    });
    return this.iterator;
  }

  private stop(reason: ChatStopReason): GenerationStep {
    this.stopReason = reason;
    return { text: this.takeNewText(true), done: true };
  }

  /** The text the newest tokens added, holding back a character still cut between tokens. */
  private takeNewText(final: boolean): string {
    const text = this.sequence.model.detokenize(this.generated);
    if (!final && text.endsWith(INCOMPLETE_CHARACTER)) return "";
    const added = text.slice(this.emittedText.length);
    this.emittedText = text;
    return final ? trimEnd(added, this.emittedText) : added;
  }
}

/** Trailing whitespace at the very end of a reply is dropped, as LlamaChat's trimWhitespaceSuffix did. */
function trimEnd(added: string, whole: string): string {
  const trimmed = whole.trimEnd();
  return added.slice(0, Math.max(0, added.length - (whole.length - trimmed.length)));
}

function endsWith(tokens: readonly Token[], suffix: readonly Token[]): boolean {
  if (suffix.length > tokens.length) return false;
  const offset = tokens.length - suffix.length;
  return suffix.every((token, index) => tokens[offset + index] === token);
}
