import { basename } from "node:path";
import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContextSequence,
  type LlamaModel,
} from "node-llama-cpp";
import Sentiment from "sentiment";
import { ArticleClassifier } from "../bench/articleMethod.js";
import { ChatRunner } from "../src/llm/chat.js";
import type { SentimentResult } from "../src/llm/llm.js";
import { applyNeutralThreshold } from "../src/llm/neutralThreshold.js";
import { createSentimentClassifier } from "../src/llm/sentiment.js";
import { loadPrompts } from "../src/prompts.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../src/sentimentLabels.js";
import { percent } from "../src/wording.js";
import type { EvalExample } from "./dataset.js";
import {
  accuracy,
  type Confusion,
  confusionMatrix,
  expectedCalibrationError,
  macroF1,
  OUT_OF_SET,
  type Prediction,
  percentile,
} from "./metrics.js";

/**
 * The sentiment eval: each method classifies every example, and each is scored the same way. Model methods share
 * one loaded model and context; the lexicon baseline uses no model at all.
 */

export const METHODS = ["bot", "grammar", "article", "article-vote", "lexicon"] as const;
export type MethodName = (typeof METHODS)[number];

export const METHOD_TITLES: Record<MethodName, string> = {
  bot: "bot: one pass, label logits",
  grammar: "grammar-constrained label",
  article: "article: 2 greedy tokens + substring",
  "article-vote": "article: vote of 3 samples",
  lexicon: "lexicon (AFINN, no model)",
};

interface Classified {
  readonly prediction: Prediction;
  readonly confidence?: number;
  readonly evaluatedTokens: number;
  readonly ms: number;
}

export interface MethodScores {
  readonly accuracy: number;
  readonly macroF1: number;
  readonly byLanguage: Record<"en" | "zh", { accuracy: number; macroF1: number; count: number }>;
  readonly confusion: Confusion;
  readonly outOfSetRate: number;
  readonly latencyP50Ms: number;
  readonly latencyP95Ms: number;
  readonly meanEvaluatedTokens: number;
  /** Expected calibration error of the confidences, for methods that give one. */
  readonly ece: number | null;
}

export interface ThresholdPoint {
  readonly threshold: number;
  readonly macroF1: number;
  readonly accuracy: number;
  readonly neutralShare: number;
}

export interface EvalResults {
  readonly model: string;
  readonly split: string;
  readonly examples: number;
  readonly date: string;
  readonly methods: Partial<Record<MethodName, MethodScores>>;
  /** The bot method with each neutral threshold, on the same predictions. */
  readonly thresholdSweep: readonly ThresholdPoint[];
  readonly bestThreshold: ThresholdPoint | null;
}

export interface EvalOptions {
  readonly modelPath: string | undefined;
  readonly methods: readonly MethodName[];
  readonly examples: readonly EvalExample[];
  readonly split: string;
  readonly threads: number;
  readonly log?: (line: string) => void;
}

function score(
  examples: readonly EvalExample[],
  results: readonly Classified[],
  withConfidence: boolean,
): MethodScores {
  const gold = examples.map((example) => example.label);
  const predicted = results.map((result) => result.prediction);
  const confusion = confusionMatrix(gold, predicted);
  const byLanguage = {} as MethodScores["byLanguage"];
  for (const lang of ["en", "zh"] as const) {
    const indexes = examples.flatMap((example, i) => (example.lang === lang ? [i] : []));
    const langGold = indexes.map((i) => gold[i] as SentimentLabel);
    const langPredicted = indexes.map((i) => predicted[i] as Prediction);
    byLanguage[lang] = {
      accuracy: accuracy(langGold, langPredicted),
      macroF1: macroF1(confusionMatrix(langGold, langPredicted)),
      count: indexes.length,
    };
  }
  const confidences = results.map((result) => result.confidence ?? 0);
  const correct = results.map((result, i) => result.prediction === gold[i]);
  return {
    accuracy: accuracy(gold, predicted),
    macroF1: macroF1(confusion),
    byLanguage,
    confusion,
    outOfSetRate: predicted.filter((p) => p === OUT_OF_SET).length / Math.max(1, predicted.length),
    latencyP50Ms: percentile(
      results.map((r) => r.ms),
      50,
    ),
    latencyP95Ms: percentile(
      results.map((r) => r.ms),
      95,
    ),
    meanEvaluatedTokens: results.reduce((sum, r) => sum + r.evaluatedTokens, 0) / Math.max(1, results.length),
    ece: withConfidence ? expectedCalibrationError(confidences, correct) : null,
  };
}

/** The lexicon baseline: AFINN's score sign, neutral at zero (which is every text it has no words for). */
export function lexiconLabel(analyzer: Sentiment, text: string): SentimentLabel {
  const { score: total } = analyzer.analyze(text);
  return total > 0 ? "positive" : total < 0 ? "negative" : "neutral";
}

export function sweepThresholds(
  examples: readonly EvalExample[],
  results: readonly SentimentResult[],
): ThresholdPoint[] {
  const gold = examples.map((example) => example.label);
  const points: ThresholdPoint[] = [];
  for (let step = 0; step <= 12; step++) {
    const threshold = step === 0 ? 0 : Number((0.35 + step * 0.05).toFixed(2));
    const predicted = results.map((result) => applyNeutralThreshold(result, threshold).label);
    points.push({
      threshold,
      macroF1: macroF1(confusionMatrix(gold, predicted)),
      accuracy: accuracy(gold, predicted),
      neutralShare: predicted.filter((label) => label === "neutral").length / Math.max(1, predicted.length),
    });
  }
  return points;
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

export async function runEval(options: EvalOptions): Promise<EvalResults> {
  const { examples } = options;
  const modelMethods = options.methods.filter((method) => method !== "lexicon");
  if (modelMethods.length > 0 && options.modelPath === undefined) {
    throw new Error("the model methods need a model: pass --model path/to/model.gguf or set MODEL_PATH");
  }
  const methods: Partial<Record<MethodName, MethodScores>> = {};
  if (options.methods.includes("lexicon")) methods.lexicon = score(examples, runLexicon(examples), false);
  let botResults: SentimentResult[] = [];
  if (modelMethods.length > 0 && options.modelPath !== undefined) {
    const scored = await runModelMethods(options.modelPath, modelMethods, options);
    Object.assign(methods, scored.methods);
    botResults = scored.botResults;
  }
  const thresholdSweep = botResults.length > 0 ? sweepThresholds(examples, botResults) : [];
  return {
    model: options.modelPath === undefined ? "none" : basename(options.modelPath),
    split: options.split,
    examples: examples.length,
    date: new Date().toISOString().slice(0, 10),
    methods,
    thresholdSweep,
    bestThreshold: bestOf(thresholdSweep),
  };
}

function runLexicon(examples: readonly EvalExample[]): Classified[] {
  const analyzer = new Sentiment();
  return examples.map((example) => {
    const started = performance.now();
    const prediction = lexiconLabel(analyzer, example.text);
    return { prediction, evaluatedTokens: 0, ms: performance.now() - started };
  });
}

/** The methods that need the model, on one loaded model and context; the bot method's raw results too. */
async function runModelMethods(
  modelPath: string,
  names: readonly MethodName[],
  options: EvalOptions,
): Promise<{ methods: Partial<Record<MethodName, MethodScores>>; botResults: SentimentResult[] }> {
  const log = options.log ?? (() => undefined);
  const { examples } = options;
  const llama = await getLlama({ gpu: false, build: "never" });
  const model: LlamaModel = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 2048, sequences: 4, threads: options.threads });
  try {
    const chatWrapper = new ChatRunner(context.getSequence()).chatWrapper;
    // The article's two variants share one sequence: each classification clears it anyway.
    const article = new ArticleClassifier(model, context.getSequence());
    const methods: Partial<Record<MethodName, MethodScores>> = {};
    let botResults: SentimentResult[] = [];
    for (const method of names) {
      log(`${method}…`);
      if (method === "bot" || method === "grammar") {
        const sequence = context.getSequence();
        const { results, raw } = await runClassifier({
          llama,
          model,
          sequence,
          chatWrapper,
          method,
          examples,
          log,
        });
        methods[method] = score(examples, results, true);
        if (method === "bot") botResults = raw;
      } else if (method === "article" || method === "article-vote") {
        methods[method] = score(
          examples,
          await runArticle(article, method, examples),
          method === "article-vote",
        );
      }
    }
    return { methods, botResults };
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/** The bot's own classifier (one pass over the cached prefix), or the same prompt read by grammar decoding. */
async function runClassifier(options: {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly method: "bot" | "grammar";
  readonly examples: readonly EvalExample[];
  readonly log: (line: string) => void;
}): Promise<{ results: Classified[]; raw: SentimentResult[] }> {
  const { method, examples } = options;
  const classifier = await createSentimentClassifier({
    llama: options.llama,
    model: options.model,
    sequence: options.sequence,
    chatWrapper: options.chatWrapper,
    prompts: loadPrompts(),
    ...(method === "grammar" ? { method: "grammar" as const } : {}),
  });
  if (method === "bot" && classifier.method !== "logits") {
    options.log("this model's labels share a first token: the bot method falls back to grammar here");
  }
  const results: Classified[] = [];
  const raw: SentimentResult[] = [];
  for (const example of examples) {
    const [result, ms] = await timed(() => classifier.classify(example.text));
    raw.push(result);
    results.push({
      prediction: result.label,
      confidence: result.confidence,
      evaluatedTokens: result.evaluatedTokens,
      ms,
    });
  }
  return { results, raw };
}

/** The article's method: two generated tokens over the whole prompt, or its three-sample vote. */
async function runArticle(
  article: ArticleClassifier,
  method: "article" | "article-vote",
  examples: readonly EvalExample[],
): Promise<Classified[]> {
  const results: Classified[] = [];
  for (const [index, example] of examples.entries()) {
    const [result, ms] = await timed(() =>
      method === "article" ? article.classify(example.text) : article.classifyByVote(example.text, index * 3),
    );
    // The substring search can find neither word: that is "neutral" by the article's rule, but it is also an
    // answer outside the label set, which we count.
    const outside = method === "article" && !/正面|负面/.test(result.output);
    results.push({
      prediction: outside ? OUT_OF_SET : result.label,
      ...(method === "article-vote" ? { confidence: result.agreement } : {}),
      evaluatedTokens: result.evaluatedTokens,
      ms,
    });
  }
  return results;
}

function bestOf(sweep: readonly ThresholdPoint[]): ThresholdPoint | null {
  return sweep.reduce<ThresholdPoint | null>(
    (best, point) => (best === null || point.macroF1 > best.macroF1 ? point : best),
    null,
  );
}

const pct = (value: number) => percent(value, 1);

export function renderEvalTable(results: EvalResults): string {
  const lines = [
    `Model \`${results.model}\`, split \`${results.split}\` (${results.examples} messages), ${results.date}.`,
    "",
    "| Method | Accuracy | Macro-F1 | EN macro-F1 | ZH macro-F1 | Outside label set | p50 / p95 | Tokens / msg | ECE |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const method of METHODS) {
    const s = results.methods[method];
    if (!s) continue;
    lines.push(
      `| ${METHOD_TITLES[method]} | ${pct(s.accuracy)} | ${s.macroF1.toFixed(3)} | ${s.byLanguage.en.macroF1.toFixed(3)} | ${s.byLanguage.zh.macroF1.toFixed(3)} | ${pct(s.outOfSetRate)} | ${s.latencyP50Ms.toFixed(1)} / ${s.latencyP95Ms.toFixed(1)} ms | ${s.meanEvaluatedTokens.toFixed(1)} | ${s.ece === null ? "–" : s.ece.toFixed(3)} |`,
    );
  }
  for (const method of METHODS) {
    const s = results.methods[method];
    if (!s) continue;
    lines.push("", `Confusion, ${METHOD_TITLES[method]} (rows gold, columns predicted):`, "");
    lines.push("| | positive | negative | neutral | other |", "| --- | --- | --- | --- | --- |");
    for (const label of SENTIMENT_LABELS) {
      const row = s.confusion[label];
      lines.push(`| ${label} | ${row.positive} | ${row.negative} | ${row.neutral} | ${row.other} |`);
    }
  }
  if (results.bestThreshold) {
    lines.push(
      "",
      `Neutral threshold sweep (bot method): best macro-F1 ${results.bestThreshold.macroF1.toFixed(3)} at ${results.bestThreshold.threshold} (0 = off).`,
    );
  }
  return `${lines.join("\n")}\n`;
}
