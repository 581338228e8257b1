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
import { SENTIMENT_LABELS, type SentimentLabel } from "../moodEmojis.js";
import { type Prompts, renderSentimentTurns } from "../prompts.js";
import { toChatHistory } from "./chatHistory.js";

export type SentimentMethod = "logits" | "grammar";

export interface SentimentResult {
  readonly label: SentimentLabel;
  /** The probability of `label` among the three labels. */
  readonly confidence: number;
  /** Each label's probability; they sum to 1. */
  readonly probabilities: Readonly<Record<SentimentLabel, number>>;
  readonly method: SentimentMethod;
  /** Tokens evaluated for this message: its own tokens plus the short fixed suffix, never the prefix. */
  readonly evaluatedTokens: number;
  /** True when the message was longer than the token budget and only its start was read. */
  readonly truncated: boolean;
  /** True when the result came from the cache of repeated short messages, with no model work. */
  readonly cached?: boolean;
  /** True when the model's best label was below the neutral threshold and the label became neutral. */
  readonly belowThreshold?: boolean;
}

/** Long messages are cut to this many tokens: the opening carries the feeling, and the context never overflows. */
export const DEFAULT_SENTIMENT_MESSAGE_TOKENS = 256;

/** Marks where the message goes when the prompt is rendered once, to split it into a prefix and a suffix. */
const MESSAGE_MARKER = "\u0000MOODBOT_MESSAGE\u0000";

/**
 * The tokens of each label, and whether one forward pass can tell them apart: that needs every label's first
 * token to be unique. Capitalised spellings are counted too when their first tokens are unique, because small
 * models often answer "Positive".
 */
export interface LabelTokens {
  readonly canonical: Readonly<Record<SentimentLabel, readonly Token[]>>;
  /** First tokens that vote for each label (canonical spelling first). */
  readonly firstTokens: Readonly<Record<SentimentLabel, readonly Token[]>>;
  readonly firstTokensUnique: boolean;
}

export function inspectLabelTokens(tokenize: (text: string) => readonly Token[]): LabelTokens {
  const canonical = {} as Record<SentimentLabel, readonly Token[]>;
  for (const label of SENTIMENT_LABELS) canonical[label] = tokenize(label);
  const firsts = SENTIMENT_LABELS.map((label) => canonical[label][0]);
  const firstTokensUnique =
    firsts.every((token) => token !== undefined) && new Set(firsts).size === firsts.length;

  const firstTokens = {} as Record<SentimentLabel, Token[]>;
  const owner = new Map<Token, SentimentLabel>();
  for (const label of SENTIMENT_LABELS) {
    const first = canonical[label][0];
    firstTokens[label] = first === undefined ? [] : [first];
    if (first !== undefined) owner.set(first, label);
  }
  if (firstTokensUnique) {
    for (const label of SENTIMENT_LABELS) {
      const capitalised = label[0]?.toUpperCase() + label.slice(1);
      const first = tokenize(capitalised)[0];
      if (first !== undefined && !owner.has(first)) {
        owner.set(first, label);
        firstTokens[label].push(first);
      }
    }
  }
  return { canonical, firstTokens, firstTokensUnique };
}

/**
 * Turns label logits into label probabilities: a softmax over the label tokens only, with each label's spellings
 * pooled. Pure, so it is tested without a model.
 */
export function labelProbabilitiesFromLogits(
  logits: ReadonlyMap<Token, number>,
  firstTokens: Readonly<Record<SentimentLabel, readonly Token[]>>,
): Record<SentimentLabel, number> {
  let max = Number.NEGATIVE_INFINITY;
  for (const label of SENTIMENT_LABELS) {
    for (const token of firstTokens[label])
      max = Math.max(max, logits.get(token) ?? Number.NEGATIVE_INFINITY);
  }
  const weights = {} as Record<SentimentLabel, number>;
  let total = 0;
  for (const label of SENTIMENT_LABELS) {
    let weight = 0;
    for (const token of firstTokens[label]) {
      const logit = logits.get(token);
      if (logit !== undefined && Number.isFinite(max)) weight += Math.exp(logit - max);
    }
    weights[label] = weight;
    total += weight;
  }
  const probabilities = {} as Record<SentimentLabel, number>;
  for (const label of SENTIMENT_LABELS) {
    probabilities[label] = total > 0 ? weights[label] / total : 1 / SENTIMENT_LABELS.length;
  }
  return probabilities;
}

/**
 * Counts an unsure answer as neutral: when the best label's probability is below `threshold`, the label becomes
 * neutral (the probabilities are kept as measured). A threshold of 0 changes nothing.
 */
export function applyNeutralThreshold(result: SentimentResult, threshold: number): SentimentResult {
  if (threshold <= 0 || result.confidence >= threshold || result.label === "neutral") return result;
  return { ...result, label: "neutral", confidence: result.probabilities.neutral, belowThreshold: true };
}

export function pickLabel(probabilities: Readonly<Record<SentimentLabel, number>>): SentimentLabel {
  let best: SentimentLabel = "neutral";
  for (const label of SENTIMENT_LABELS) {
    if (probabilities[label] > probabilities[best]) best = label;
  }
  return best;
}

export interface SentimentClassifierOptions {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly prompts: Prompts;
  readonly maxMessageTokens?: number;
  /**
   * Forces a method: "grammar" works on any vocabulary; "logits" needs unique first tokens. By default the
   * one-pass logits method is used whenever the vocabulary allows it.
   */
  readonly method?: SentimentMethod;
}

/**
 * One-pass sentiment over a cached prefix. The instruction and the few-shot turns are evaluated once into a
 * dedicated context sequence; each message then costs only its own tokens plus a few suffix tokens, and the label
 * is read from the next-token logits without generating anything. After each message the sequence is cut back to
 * the prefix, so messages never see each other.
 */
export class SentimentClassifier {
  private constructor(
    private readonly options: SentimentClassifierOptions,
    private readonly prefix: readonly Token[],
    private readonly suffix: readonly Token[],
    readonly labels: LabelTokens,
    private readonly grammar: LlamaGrammar | undefined,
  ) {}

  static async create(options: SentimentClassifierOptions): Promise<SentimentClassifier> {
    const { model, chatWrapper, prompts, llama } = options;
    const turns = renderSentimentTurns(prompts, MESSAGE_MARKER);
    const history = [...toChatHistory(turns), { type: "model", response: [] } satisfies ChatHistoryItem];
    const { contextText } = chatWrapper.generateContextState({ chatHistory: history });
    const [before, after] = splitAtMarker(contextText);
    const prefix = before.tokenize(model.tokenizer);
    const suffix = after.tokenize(model.tokenizer, "trimLeadingSpace");
    const labels = inspectLabelTokens((text) => model.tokenize(text, false));
    if (options.method === "logits" && !labels.firstTokensUnique) {
      throw new Error("this model's vocabulary gives two sentiment labels the same first token; use grammar");
    }
    const method = options.method ?? (labels.firstTokensUnique ? "logits" : "grammar");
    const grammar =
      method === "logits"
        ? undefined
        : await llama.createGrammar({
            grammar: `root ::= ${SENTIMENT_LABELS.map((label) => JSON.stringify(label)).join(" | ")}`,
          });
    const classifier = new SentimentClassifier(options, prefix, suffix, labels, grammar);
    await classifier.restorePrefix();
    return classifier;
  }

  get method(): SentimentMethod {
    return this.grammar ? "grammar" : "logits";
  }

  get prefixTokenCount(): number {
    return this.prefix.length;
  }

  /** The tokens a message adds: its own text as plain text (never control tokens), cut to the budget. */
  messageTokens(text: string): { tokens: Token[]; truncated: boolean } {
    const all = this.options.model.tokenize(text, false);
    const budget = this.options.maxMessageTokens ?? DEFAULT_SENTIMENT_MESSAGE_TOKENS;
    return { tokens: all.slice(0, budget), truncated: all.length > budget };
  }

  async classify(text: string, signal?: AbortSignal): Promise<SentimentResult> {
    signal?.throwIfAborted();
    const { tokens: message, truncated } = this.messageTokens(text);
    const input = [...message, ...this.suffix];
    await this.restorePrefix();
    try {
      const { probabilities, generatedTokens } = this.grammar
        ? await this.decodeWithGrammar(input, this.grammar, signal)
        : { probabilities: await this.readLabelLogits(input), generatedTokens: 0 };
      const label = pickLabel(probabilities);
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

  private async readLabelLogits(input: readonly Token[]): Promise<Record<SentimentLabel, number>> {
    const voteTokens = SENTIMENT_LABELS.flatMap((label) => this.labels.firstTokens[label]);
    const last = input.length - 1;
    const results = await this.options.sequence.controlledEvaluate(
      input.map((token, index) =>
        index === last ? [token, { generateNext: { logits: { filter: { tokens: voteTokens } } } }] : token,
      ),
    );
    const logits = results[last]?.next.logits;
    if (!logits) throw new Error("the model returned no logits for the sentiment labels");
    return labelProbabilitiesFromLogits(logits, this.labels.firstTokens);
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
  ): Promise<{ probabilities: Record<SentimentLabel, number>; generatedTokens: number }> {
    const { model, sequence } = this.options;
    const grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
    const generated: Token[] = [];
    let pathProbability = 1;
    const maxSteps = Math.max(...SENTIMENT_LABELS.map((label) => this.labels.canonical[label].length)) + 4;
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
      if ((SENTIMENT_LABELS as readonly string[]).includes(text) || generated.length >= maxSteps) break;
    }
    const text = model.detokenize(generated);
    const chosen = SENTIMENT_LABELS.find((label) => label === text);
    if (!chosen) throw new Error(`grammar-constrained decoding produced ${JSON.stringify(text)}`);
    const rest = (1 - pathProbability) / (SENTIMENT_LABELS.length - 1);
    const probabilities = {} as Record<SentimentLabel, number>;
    for (const label of SENTIMENT_LABELS) probabilities[label] = label === chosen ? pathProbability : rest;
    return { probabilities, generatedTokens: generated.length };
  }
}

function splitAtMarker(text: LlamaText): [LlamaText, LlamaText] {
  const values = text.values;
  const index = values.findIndex((value) => typeof value === "string" && value.includes(MESSAGE_MARKER));
  const holder = values[index];
  if (typeof holder !== "string") throw new Error("the chat wrapper dropped the sentiment message slot");
  const [before = "", after = ""] = holder.split(MESSAGE_MARKER);
  return [LlamaText([...values.slice(0, index), before]), LlamaText([after, ...values.slice(index + 1)])];
}
