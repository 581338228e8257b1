import { basename } from "node:path";
import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContextSequence,
  type LlamaModel,
} from "node-llama-cpp";
import Sentiment from "sentiment";
import { ARTICLE_PROMPT_V2, ArticleClassifier } from "../bench/articleMethod.js";
import { ChatRunner } from "../src/llm/inProcess/chat.js";
import { createSentimentClassifier } from "../src/llm/inProcess/sentiment.js";
import type { ModelRuntimeInfo, SentimentResult } from "../src/llm/llm.js";
import { applyNeutralThreshold } from "../src/llm/neutralThreshold.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../src/platform/sentimentLabels.js";
import { loadPrompts } from "../src/prompts/prompts.js";
import { percent } from "../src/wording/wording.js";
import {
  botInput,
  type Classified,
  classifyWithBot,
  inProcessBot,
  type OpenBot,
  whenReady,
} from "./botMethod.js";
import type { EvalExample } from "./dataset.js";
import { afinnLabel, chineseLexiconLabel, vaderLabel } from "./lexicons.js";
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

export const METHODS = [
  "bot",
  "grammar",
  "article",
  "article-v2",
  "article-vote",
  "lexicon",
  "vader",
  "lexicon-zh",
] as const;
export type MethodName = (typeof METHODS)[number];

/** The methods that need no model. */
const NO_MODEL: Record<"lexicon" | "vader" | "lexicon-zh", (text: string) => SentimentLabel> = {
  lexicon: (() => {
    const analyzer = new Sentiment();
    return (text: string) => afinnLabel(analyzer, text);
  })(),
  vader: vaderLabel,
  "lexicon-zh": chineseLexiconLabel,
};
const isNoModel = (method: MethodName): method is keyof typeof NO_MODEL => method in NO_MODEL;

export const METHOD_TITLES: Record<MethodName, string> = {
  bot: "bot: one pass, label logits",
  grammar: "grammar-constrained label",
  article: "article: 2 greedy tokens + substring",
  "article-v2": "article v2: task markers, 2 greedy tokens",
  "article-vote": "article: vote of 3 samples",
  lexicon: "lexicon (AFINN, no model)",
  vader: "VADER (no model)",
  "lexicon-zh": "Chinese word list (no model)",
};

export interface MethodScores {
  readonly accuracy: number;
  readonly macroF1: number;
  readonly byLanguage: Record<"en" | "zh", { accuracy: number; macroF1: number; count: number }>;
  readonly confusion: Confusion;
  readonly outOfSetRate: number;
  /** The article's methods: how often the generated answer held neither word (then read as neutral). */
  readonly neitherRate: number | null;
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
  /** Where the bot method ran and how it read the labels; null when it did not run. */
  readonly botRuntime: Pick<ModelRuntimeInfo, "kind" | "method"> | null;
  readonly split: string;
  readonly examples: number;
  readonly date: string;
  /** SENTIMENT_NEUTRAL_THRESHOLD as the bot applies it: the bot method is scored with it. */
  readonly neutralThreshold: number;
  readonly methods: Partial<Record<MethodName, MethodScores>>;
  /** The bot method's raw results with each neutral threshold, always on the dev split. */
  readonly thresholdSweep: readonly ThresholdPoint[];
  /** The threshold with the best macro-F1 on dev: chosen there, never on the split being reported. */
  readonly bestThreshold: ThresholdPoint | null;
  /** That threshold applied to the evaluated split: the figure to report. */
  readonly bestThresholdOnSplit: ThresholdPoint | null;
  /** The bot method with each prompt folder given by --prompts, by folder. */
  readonly promptVariants: Readonly<Record<string, MethodScores>>;
}

export interface EvalOptions {
  /** The model file of the in-process methods (grammar, the article's), and of the bot's unless `openBot` says. */
  readonly modelPath: string | undefined;
  /** Where the bot method's model runs: by default `modelPath` in-process, with the bot's own runtime. */
  readonly openBot?: OpenBot;
  readonly methods: readonly MethodName[];
  readonly examples: readonly EvalExample[];
  readonly split: string;
  /** The dev split, where the neutral threshold is chosen (the same as `examples` when the split is dev). */
  readonly devExamples: readonly EvalExample[];
  /** The bot's SENTIMENT_NEUTRAL_THRESHOLD, applied to the bot method as the bot applies it. */
  readonly neutralThreshold: number;
  readonly threads: number;
  /** Other prompt folders: the bot method runs with each, scored side by side with the shipped prompts. */
  readonly promptVariants?: readonly string[];
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
    neitherRate: results.some((result) => result.neither !== undefined)
      ? results.filter((result) => result.neither).length / Math.max(1, results.length)
      : null,
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

export function sweepThresholds(
  examples: readonly EvalExample[],
  results: readonly SentimentResult[],
): ThresholdPoint[] {
  const points: ThresholdPoint[] = [];
  for (let step = 0; step <= 12; step++) {
    const threshold = step === 0 ? 0 : Number((0.35 + step * 0.05).toFixed(2));
    points.push(thresholdPoint(examples, results, threshold));
  }
  return points;
}

/** The bot method's scores with one neutral threshold applied to its raw results. */
function thresholdPoint(
  examples: readonly EvalExample[],
  results: readonly SentimentResult[],
  threshold: number,
): ThresholdPoint {
  const gold = examples.map((example) => example.label);
  const predicted = results.map((result) => applyNeutralThreshold(result, threshold).label);
  return {
    threshold,
    macroF1: macroF1(confusionMatrix(gold, predicted)),
    accuracy: accuracy(gold, predicted),
    neutralShare: predicted.filter((label) => label === "neutral").length / Math.max(1, predicted.length),
  };
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

export async function runEval(options: EvalOptions): Promise<EvalResults> {
  const { examples } = options;
  const variants = options.promptVariants ?? [];
  const wantsBot = options.methods.includes("bot") || variants.length > 0;
  const baselines = options.methods.filter((method) => !isNoModel(method) && method !== "bot");
  const { modelPath } = options;
  const openBot =
    options.openBot ?? (modelPath === undefined ? undefined : inProcessBot(modelPath, options.threads));
  if ((wantsBot && !openBot) || (baselines.length > 0 && modelPath === undefined)) {
    throw new Error("the model methods need a model: pass --model path/to/model.gguf or set MODEL_PATH");
  }
  const methods: Partial<Record<MethodName, MethodScores>> = {};
  const promptVariants: Record<string, MethodScores> = {};
  for (const method of options.methods.filter(isNoModel)) {
    methods[method] = score(examples, runNoModel(examples, NO_MODEL[method]), false);
  }
  let threshold: Pick<EvalResults, "thresholdSweep" | "bestThreshold" | "bestThresholdOnSplit"> = {
    thresholdSweep: [],
    bestThreshold: null,
    bestThresholdOnSplit: null,
  };
  let modelName = modelPath === undefined ? "none" : basename(modelPath);
  let botRuntime: EvalResults["botRuntime"] = null;
  if (wantsBot && openBot) {
    const bot = await runBotMethod(openBot, options);
    modelName = options.openBot ? bot.modelName : modelName;
    botRuntime = bot.runtime;
    if (bot.scores) methods.bot = bot.scores;
    Object.assign(promptVariants, bot.promptVariants);
    if (bot.raw) threshold = thresholdChosenOnDev(bot.raw.dev, bot.raw.split);
  }
  if (baselines.length > 0 && modelPath !== undefined) {
    Object.assign(methods, await runModelMethods(modelPath, baselines, options));
  }
  return {
    model: modelName,
    botRuntime,
    split: options.split,
    examples: examples.length,
    date: new Date().toISOString().slice(0, 10),
    neutralThreshold: options.neutralThreshold,
    methods,
    ...threshold,
    promptVariants,
  };
}

interface Classifications {
  readonly examples: readonly EvalExample[];
  readonly raw: readonly SentimentResult[];
}

/** The neutral threshold is chosen on dev and reported on the evaluated split: never chosen where it is scored. */
export function thresholdChosenOnDev(
  dev: Classifications,
  split: Classifications,
): Pick<EvalResults, "thresholdSweep" | "bestThreshold" | "bestThresholdOnSplit"> {
  const thresholdSweep = sweepThresholds(dev.examples, dev.raw);
  const bestThreshold = bestOf(thresholdSweep);
  const bestThresholdOnSplit =
    bestThreshold === null ? null : thresholdPoint(split.examples, split.raw, bestThreshold.threshold);
  return { thresholdSweep, bestThreshold, bestThresholdOnSplit };
}

function runNoModel(examples: readonly EvalExample[], label: (text: string) => SentimentLabel): Classified[] {
  return examples.map((example) => {
    const started = performance.now();
    const prediction = label(botInput(example.text));
    return { prediction, evaluatedTokens: 0, ms: performance.now() - started };
  });
}

/** How long the bot method waits for a model server to become usable. */
const READY_TIMEOUT_MS = 60_000;

/**
 * The bot method through the bot's own model (see eval/botMethod.ts), with the shipped prompts and then each other
 * prompt folder; its raw results on the split and on dev, where the neutral threshold is chosen.
 */
async function runBotMethod(
  open: OpenBot,
  options: EvalOptions,
): Promise<{
  modelName: string;
  runtime: Pick<ModelRuntimeInfo, "kind" | "method">;
  scores: MethodScores | undefined;
  raw: { split: Classifications; dev: Classifications } | undefined;
  promptVariants: Record<string, MethodScores>;
}> {
  const log = options.log ?? (() => undefined);
  const { examples } = options;
  const llm = await open(loadPrompts());
  try {
    await whenReady(llm, READY_TIMEOUT_MS);
    if (llm.runtime.method !== "logits")
      log(`the bot reads this model's labels by ${llm.runtime.method}, not by their logits`);
    let scores: MethodScores | undefined;
    let raw: { split: Classifications; dev: Classifications } | undefined;
    if (options.methods.includes("bot")) {
      log("bot…");
      const split = await classifyWithBot(llm, examples, options.neutralThreshold);
      scores = score(examples, split.results, true);
      // The threshold is chosen on dev: the dev split is classified too when another split is evaluated.
      const dev =
        options.split === "dev"
          ? split
          : await classifyWithBot(llm, options.devExamples, options.neutralThreshold);
      raw = { split: { examples, raw: split.raw }, dev: { examples: options.devExamples, raw: dev.raw } };
    }
    const promptVariants: Record<string, MethodScores> = {};
    for (const directory of options.promptVariants ?? []) {
      log(`bot with the prompts in ${directory}…`);
      await llm.reload(loadPrompts(directory), []);
      const { results } = await classifyWithBot(llm, examples, options.neutralThreshold);
      promptVariants[directory] = score(examples, results, true);
    }
    const runtime = { kind: llm.runtime.kind, method: llm.runtime.method };
    return { modelName: llm.modelName, runtime, scores, raw, promptVariants };
  } finally {
    await llm.close();
  }
}

/** The in-process baselines, on one loaded model and context. */
async function runModelMethods(
  modelPath: string,
  names: readonly MethodName[],
  options: EvalOptions,
): Promise<Partial<Record<MethodName, MethodScores>>> {
  const log = options.log ?? (() => undefined);
  const { examples } = options;
  const llama = await getLlama({ gpu: false, build: "never" });
  const model: LlamaModel = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 2048, sequences: 3, threads: options.threads });
  try {
    const chatWrapper = new ChatRunner(context.getSequence()).chatWrapper;
    // The article's variants share one sequence: each classification clears it anyway.
    const articleSequence = context.getSequence();
    const grammarSequence = context.getSequence();
    const article = new ArticleClassifier(model, articleSequence);
    const articleV2 = new ArticleClassifier(model, articleSequence, ARTICLE_PROMPT_V2);
    const methods: Partial<Record<MethodName, MethodScores>> = {};
    for (const method of names) {
      log(`${method}…`);
      if (method === "grammar") {
        const results = await runGrammar({
          llama,
          model,
          sequence: grammarSequence,
          chatWrapper,
          examples,
          options,
        });
        methods[method] = score(examples, results, true);
      } else if (method === "article" || method === "article-vote") {
        methods[method] = score(
          examples,
          await runArticle(article, method, examples),
          method === "article-vote",
        );
      } else if (method === "article-v2") {
        methods[method] = score(examples, await runArticle(articleV2, "article", examples), false);
      }
    }
    return methods;
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/** The bot's sentiment prompt read by grammar-constrained decoding instead of its label logits: a baseline. */
async function runGrammar(options: {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly sequence: LlamaContextSequence;
  readonly chatWrapper: ChatWrapper;
  readonly examples: readonly EvalExample[];
  readonly options: EvalOptions;
}): Promise<Classified[]> {
  const classifier = await createSentimentClassifier({
    llama: options.llama,
    model: options.model,
    sequence: options.sequence,
    chatWrapper: options.chatWrapper,
    prompts: loadPrompts(),
    method: "grammar",
  });
  const results: Classified[] = [];
  for (const example of options.examples) {
    const text = botInput(example.text);
    if (text === "") {
      results.push({ prediction: "neutral", confidence: 1, evaluatedTokens: 0, ms: 0 });
      continue;
    }
    const [measured, ms] = await timed(() => classifier.classify(text));
    const shown = applyNeutralThreshold(measured, options.options.neutralThreshold);
    results.push({
      prediction: shown.label,
      confidence: shown.confidence,
      evaluatedTokens: shown.evaluatedTokens,
      ms,
    });
  }
  return results;
}

/** The article's method: two generated tokens over the whole prompt, or its three-sample vote. */
async function runArticle(
  article: ArticleClassifier,
  method: "article" | "article-vote",
  examples: readonly EvalExample[],
): Promise<Classified[]> {
  const results: Classified[] = [];
  for (const [index, example] of examples.entries()) {
    const text = botInput(example.text);
    const [result, ms] = await timed(() =>
      method === "article" ? article.classify(text) : article.classifyByVote(text, index * 3),
    );
    // An answer with neither word is neutral by the article's own rule, and scored as neutral; how often that
    // happens is reported beside the scores.
    results.push({
      prediction: result.label,
      neither: result.neither,
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

function scoreRow(title: string, s: MethodScores): string {
  return `| ${title} | ${pct(s.accuracy)} | ${s.macroF1.toFixed(3)} | ${s.byLanguage.en.macroF1.toFixed(3)} | ${s.byLanguage.zh.macroF1.toFixed(3)} | ${s.neitherRate === null ? "–" : pct(s.neitherRate)} | ${s.latencyP50Ms.toFixed(1)} / ${s.latencyP95Ms.toFixed(1)} ms | ${s.meanEvaluatedTokens.toFixed(1)} | ${s.ece === null ? "–" : s.ece.toFixed(3)} |`;
}

export function renderEvalTable(results: EvalResults): string {
  const lines = [
    `Model \`${results.model}\`, split \`${results.split}\` (${results.examples} messages), ${results.date}.`,
    ...(results.botRuntime
      ? [
          `The bot method ran through the bot's model seam: ${results.botRuntime.kind}, labels read by ${results.botRuntime.method}.`,
        ]
      : []),
    "",
    "| Method | Accuracy | Macro-F1 | EN macro-F1 | ZH macro-F1 | Answer held neither word | p50 / p95 | Tokens / msg | ECE |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const method of METHODS) {
    const s = results.methods[method];
    if (!s) continue;
    lines.push(scoreRow(METHOD_TITLES[method], s));
  }
  for (const [directory, s] of Object.entries(results.promptVariants)) {
    lines.push(scoreRow(`bot with the prompts in \`${directory}\``, s));
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
    const onSplit = results.bestThresholdOnSplit;
    lines.push(
      "",
      `Neutral threshold (bot method), chosen on dev: ${results.bestThreshold.threshold} (0 = off), dev macro-F1 ${results.bestThreshold.macroF1.toFixed(3)}; on ${results.split}: macro-F1 ${onSplit?.macroF1.toFixed(3) ?? "–"}, accuracy ${onSplit ? pct(onSplit.accuracy) : "–"}. The bot method above is scored with SENTIMENT_NEUTRAL_THRESHOLD=${results.neutralThreshold}.`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** One table for the README: every method on dev and on the held-out split, from one run of `--split both`. */
export function renderReadmeTable(results: readonly EvalResults[]): string {
  const dev = results.find((result) => result.split === "dev");
  const holdout = results.find((result) => result.split === "holdout");
  if (!dev || !holdout) throw new Error("the README table needs the dev and the held-out results");
  const lines = [
    `README table: model \`${holdout.model}\`, dev ${dev.examples} / held-out ${holdout.examples} messages, ${holdout.date}.`,
    "",
    "| Method | Dev accuracy | Dev macro-F1 | Held-out accuracy | Held-out macro-F1 | Held-out EN / ZH macro-F1 | Tokens / msg |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  const row = (title: string, d: MethodScores | undefined, h: MethodScores | undefined) => {
    if (!d || !h) return;
    lines.push(
      `| ${title} | ${pct(d.accuracy)} | ${d.macroF1.toFixed(3)} | ${pct(h.accuracy)} | ${h.macroF1.toFixed(3)} | ${h.byLanguage.en.macroF1.toFixed(3)} / ${h.byLanguage.zh.macroF1.toFixed(3)} | ${h.meanEvaluatedTokens.toFixed(1)} |`,
    );
  };
  for (const method of METHODS) row(METHOD_TITLES[method], dev.methods[method], holdout.methods[method]);
  for (const directory of Object.keys(holdout.promptVariants)) {
    row(
      `bot with the prompts in \`${directory}\``,
      dev.promptVariants[directory],
      holdout.promptVariants[directory],
    );
  }
  if (holdout.bestThreshold && holdout.bestThresholdOnSplit) {
    lines.push(
      "",
      `Neutral threshold chosen on dev: ${holdout.bestThreshold.threshold}; held-out macro-F1 at it ${holdout.bestThresholdOnSplit.macroF1.toFixed(3)}.`,
    );
  }
  return `${lines.join("\n")}\n`;
}
