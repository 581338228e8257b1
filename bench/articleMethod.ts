import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { SentimentLabel } from "../src/platform/sentimentLabels.js";

/**
 * The baseline we compare against, as the "all-in-one in-context learning" article does it: the whole prompt is
 * evaluated from scratch for every message, two tokens are generated greedily, and the label is found by substring
 * search, with neutral when neither word appears. Kept here, outside the bot, only to be measured.
 */
export const ARTICLE_PROMPT =
  "你是一个冷酷的情感分析师，只输出正面或负面，不解释原因。\n用户说：{text}\n你的判断是：";

/** The article's second prompt: the same task behind explicit task markers, in strict mode. */
export const ARTICLE_PROMPT_V2 =
  "[TASK_START]\nTASK: SENTIMENT ANALYSIS\nMODE: STRICT\nLABELS: 正面 | 负面\nINPUT: {text}\nOUTPUT (only one word):";

export interface ArticleResult {
  readonly label: SentimentLabel;
  readonly output: string;
  /** The answer held neither 正面 nor 负面, so the label is the article's neutral fallback (the vote: most runs). */
  readonly neither: boolean;
  readonly evaluatedTokens: number;
  /** For the vote: the share of the three samples that agree with the label. */
  readonly agreement?: number;
}

export function parseArticleOutput(output: string): SentimentLabel {
  if (output.includes("正面")) return "positive";
  if (output.includes("负面")) return "negative";
  return "neutral";
}

export class ArticleClassifier {
  constructor(
    private readonly model: LlamaModel,
    private readonly sequence: LlamaContextSequence,
    /** The prompt, with {text} where the message goes: the article's first prompt, or its v2. */
    private readonly prompt: string = ARTICLE_PROMPT,
  ) {}

  /** One classification; `temperature` 0 is the article's greedy method, above 0 a sampled vote. */
  async classify(
    text: string,
    options: { temperature?: number; seed?: number } = {},
  ): Promise<ArticleResult> {
    await this.sequence.clearHistory();
    const prompt = this.model.tokenize(
      this.prompt.replace("{text}", () => text),
      false,
    );
    return this.answer(prompt, {
      temperature: options.temperature ?? 0,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
    });
  }

  /**
   * The article's method with its fixed instruction cached: the prompt up to the message is evaluated once and
   * kept, so each message costs its own tokens, the prompt's tail and the two generated tokens. It separates what
   * prefix caching gives from what reading the label probabilities in one pass gives.
   */
  async classifyReusingPrefix(text: string): Promise<ArticleResult> {
    const [head = "", tail = ""] = this.prompt.split("{text}");
    const prefix = this.model.tokenize(head, false);
    const { firstDifferentIndex } = this.sequence.compareContextTokens(prefix);
    if (firstDifferentIndex < prefix.length) {
      await this.sequence.clearHistory();
      await this.sequence.evaluateWithoutGeneratingNewTokens(prefix);
    } else if (this.sequence.nextTokenIndex > prefix.length) {
      await this.sequence.eraseContextTokenRanges([
        { start: prefix.length, end: this.sequence.nextTokenIndex },
      ]);
    }
    return this.answer(this.model.tokenize(`${text}${tail}`, false), { temperature: 0 });
  }

  /** Evaluates `input` on top of what the sequence holds, generates the article's two tokens and reads them. */
  private async answer(
    input: Token[],
    options: { temperature: number; seed?: number },
  ): Promise<ArticleResult> {
    const generated: Token[] = [];
    for await (const token of this.sequence.evaluate(input, options)) {
      generated.push(token);
      if (generated.length >= 2) break;
    }
    const output = this.model.detokenize(generated);
    // The input, then each generated token but the last is fed back to produce the next one.
    return {
      label: parseArticleOutput(output),
      output,
      neither: !/正面|负面/.test(output),
      evaluatedTokens: input.length + generated.length - 1,
    };
  }

  /** The article's "vote of three samples" variant: three sampled runs, majority label, neutral on a tie. */
  async classifyByVote(text: string, seed: number): Promise<ArticleResult> {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await this.classify(text, { temperature: 0.8, seed: seed + i }));
    const counts = new Map<SentimentLabel, number>();
    for (const run of runs) counts.set(run.label, (counts.get(run.label) ?? 0) + 1);
    const [top] = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    const label = top && top[1] >= 2 ? top[0] : "neutral";
    return {
      label,
      agreement: (counts.get(label) ?? 0) / runs.length,
      output: runs.map((run) => run.output).join(" | "),
      neither: runs.filter((run) => run.neither).length >= 2,
      evaluatedTokens: runs.reduce((sum, run) => sum + run.evaluatedTokens, 0),
    };
  }
}
