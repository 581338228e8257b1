import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  LlamaText,
  type Token,
} from "node-llama-cpp";
import type { ChatTurn } from "../../prompts/prompts.js";
import { DEFAULT_MESSAGE_TOKENS } from "../../text/inputBudget.js";
import { inspectLabelTokens, type LabelTokens, labelProbabilitiesFromLogits, pickLabel } from "../labels.js";
import type { LabelMethod, LabelResult } from "../llm.js";
import { toChatHistory } from "./chatHistory.js";

/** Marks where the message goes when the prompt is rendered once, to split it into a prefix and a suffix. */
const MESSAGE_MARKER = "\u0000MOODBOT_MESSAGE\u0000";

export interface LabelClassifierOptions<L extends string> {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly labels: readonly L[];
  /** The label a tie goes to. */
  readonly tieBreak: L;
  /** The conversation for one input: instruction, few-shot turns, then the input's own user turn. */
  readonly renderTurns: (input: string) => ChatTurn[];
  readonly maxMessageTokens?: number;
  /**
   * Forces a method: "grammar" works on any vocabulary; "logits" needs unique first tokens. By default the
   * one-pass logits method is used whenever the vocabulary allows it.
   */
  readonly method?: LabelMethod;
}

/**
 * One-pass classification over a cached prefix. The instruction and the few-shot turns are evaluated once into a
 * dedicated context sequence; each input then costs only its own tokens plus a few suffix tokens, and the label
 * is read from the next-token logits without generating anything. After each input the sequence is cut back to
 * the prefix, so inputs never see each other. Sentiment and every label task defined in prompts/tasks use it.
 * One instance owns one sequence; `replicate` gives a lane more sequences, so one pass can classify several inputs.
 */
export class LabelClassifier<L extends string> {
  private constructor(
    private readonly options: LabelClassifierOptions<L>,
    private readonly prefix: readonly Token[],
    private readonly suffix: readonly Token[],
    readonly labels: LabelTokens<L>,
    private readonly grammar: LlamaGrammar | undefined,
  ) {}

  static async create<L extends string>(options: LabelClassifierOptions<L>): Promise<LabelClassifier<L>> {
    const { model, chatWrapper, llama } = options;
    const turns = options.renderTurns(MESSAGE_MARKER);
    const history = [...toChatHistory(turns), { type: "model", response: [] } satisfies ChatHistoryItem];
    const { contextText } = chatWrapper.generateContextState({ chatHistory: history });
    const [before, after] = splitAtMarker(contextText);
    const prefix = before.tokenize(model.tokenizer);
    const suffix = after.tokenize(model.tokenizer, "trimLeadingSpace");
    const labels = inspectLabelTokens((text) => model.tokenize(text, false), options.labels);
    if (options.method === "logits" && !labels.firstTokensUnique) {
      throw new Error("this model's vocabulary gives two labels the same first token; use grammar");
    }
    const method = options.method ?? (labels.firstTokensUnique ? "logits" : "grammar");
    const grammar =
      method === "logits"
        ? undefined
        : await llama.createGrammar({
            grammar: `root ::= ${options.labels.map((label) => JSON.stringify(label)).join(" | ")}`,
          });
    const classifier = new LabelClassifier(options, prefix, suffix, labels, grammar);
    await classifier.restorePrefix();
    return classifier;
  }

  /**
   * The same classifier on more sequences: the evaluated prefix is copied through a state file, which takes
   * milliseconds where evaluating it again would take seconds on a CPU.
   */
  async replicate(sequences: readonly LlamaContextSequence[]): Promise<LabelClassifier<L>[]> {
    if (sequences.length === 0) return [];
    const stateFile = join(tmpdir(), `moodbot-prefix-${process.pid}-${randomUUID()}.bin`);
    try {
      await this.options.sequence.saveStateToFile(stateFile);
      const copies: LabelClassifier<L>[] = [];
      for (const sequence of sequences) {
        // The file was written a moment ago from this very model, which is the risk the flag asks about.
        await sequence.loadStateFromFile(stateFile, { acceptRisk: true });
        const copy = new LabelClassifier(
          { ...this.options, sequence },
          this.prefix,
          this.suffix,
          this.labels,
          this.grammar,
        );
        await copy.restorePrefix();
        copies.push(copy);
      }
      return copies;
    } finally {
      await rm(stateFile, { force: true });
    }
  }

  /** Tokens one input adds to a pass: its own, cut to the budget, and the fixed suffix. */
  inputTokenCount(text: string): number {
    return this.messageTokens(text).tokens.length + this.suffix.length;
  }

  get method(): LabelMethod {
    return this.grammar ? "grammar" : "logits";
  }

  /** The prompt around an input: it identifies the prompt version, for caches keyed by it. */
  get promptTokens(): readonly Token[] {
    return [...this.prefix, ...this.suffix];
  }

  get prefixTokenCount(): number {
    return this.prefix.length;
  }

  /** The tokens a message adds: its own text as plain text (never control tokens), cut to the budget. */
  messageTokens(text: string): { tokens: Token[]; truncated: boolean } {
    const all = this.options.model.tokenize(text, false);
    const budget = this.options.maxMessageTokens ?? DEFAULT_MESSAGE_TOKENS;
    return { tokens: all.slice(0, budget), truncated: all.length > budget };
  }

  async classify(text: string, signal?: AbortSignal): Promise<LabelResult<L>> {
    signal?.throwIfAborted();
    const { tokens: message, truncated } = this.messageTokens(text);
    const input = [...message, ...this.suffix];
    await this.restorePrefix();
    try {
      const { probabilities, generatedTokens } = this.grammar
        ? await this.decodeWithGrammar(input, this.grammar, signal)
        : { probabilities: await this.readLabelLogits(input), generatedTokens: 0 };
      const label = pickLabel(probabilities, this.options.labels, this.options.tieBreak);
      return {
        label,
        confidence: probabilities[label],
        probabilities,
        method: this.method,
        // Each generated token but the last is fed back in to produce the next one.
        evaluatedTokens: input.length + Math.max(0, generatedTokens - 1),
        truncated,
      };
    } finally {
      await this.restorePrefix();
    }
  }

  /** Cuts the sequence back to the cached prefix, re-evaluating it only if it was lost. */
  private async restorePrefix(): Promise<void> {
    const { sequence } = this.options;
    const { firstDifferentIndex } = sequence.compareContextTokens([...this.prefix]);
    if (firstDifferentIndex < this.prefix.length) {
      await sequence.clearHistory();
      await sequence.evaluateWithoutGeneratingNewTokens([...this.prefix]);
    } else if (sequence.nextTokenIndex > this.prefix.length) {
      await sequence.eraseContextTokenRanges([{ start: this.prefix.length, end: sequence.nextTokenIndex }]);
    }
  }

  private async readLabelLogits(input: readonly Token[]): Promise<Record<L, number>> {
    const labels = this.options.labels;
    // The vote tokens came from this model's tokenizer (inspectLabelTokens), so they are its tokens.
    const voteTokens = labels.flatMap((label) => this.labels.firstTokens[label]) as Token[];
    const last = input.length - 1;
    const results = await this.options.sequence.controlledEvaluate(
      input.map((token, index) =>
        index === last ? [token, { generateNext: { logits: { filter: { tokens: voteTokens } } } }] : token,
      ),
    );
    const logits = results[last]?.next.logits;
    if (!logits) throw new Error("the model returned no logits for the labels");
    return labelProbabilitiesFromLogits(logits, this.labels.firstTokens, labels);
  }

  /**
   * The fallback for vocabularies where two labels start with the same token: greedy decoding constrained to the
   * label strings. Only the chosen label's probability is measured (the product of its tokens' probabilities
   * under the grammar); the remainder is spread evenly over the other labels.
   */
  private async decodeWithGrammar(
    input: readonly Token[],
    grammar: LlamaGrammar,
    signal: AbortSignal | undefined,
  ): Promise<{ probabilities: Record<L, number>; generatedTokens: number }> {
    const { model, sequence, labels } = this.options;
    const grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
    const generated: Token[] = [];
    let pathProbability = 1;
    const maxSteps = Math.max(...labels.map((label) => this.labels.canonical[label].length)) + 4;
    const iterator = sequence.evaluateWithMetadata(
      [...input],
      { confidence: true },
      { grammarEvaluationState },
    );
    for await (const { token, confidence } of iterator) {
      signal?.throwIfAborted();
      generated.push(token);
      pathProbability *= confidence;
      const text = model.detokenize(generated);
      if ((labels as readonly string[]).includes(text) || generated.length >= maxSteps) break;
    }
    const text = model.detokenize(generated);
    const chosen = labels.find((label) => label === text);
    if (!chosen) throw new Error(`grammar-constrained decoding produced ${JSON.stringify(text)}`);
    const rest = (1 - pathProbability) / (labels.length - 1);
    const probabilities = {} as Record<L, number>;
    for (const label of labels) probabilities[label] = label === chosen ? pathProbability : rest;
    return { probabilities, generatedTokens: generated.length };
  }
}

function splitAtMarker(text: LlamaText): [LlamaText, LlamaText] {
  const values = text.values;
  const index = values.findIndex((value) => typeof value === "string" && value.includes(MESSAGE_MARKER));
  const holder = values[index];
  if (typeof holder !== "string") throw new Error("the chat wrapper dropped the input's slot in the prompt");
  const [before = "", after = ""] = holder.split(MESSAGE_MARKER);
  return [LlamaText([...values.slice(0, index), before]), LlamaText([after, ...values.slice(index + 1)])];
}
