import { basename } from "node:path";
import { getLlama } from "node-llama-cpp";
import { ChatRunner } from "../src/llm/inProcess/chat.js";
import { LabelClassifier } from "../src/llm/inProcess/labelClassifier.js";
import type { LabelResult } from "../src/llm/llm.js";
import { isLabelTask, loadTasks, renderTaskTurns, type Task } from "../src/tasks/tasks.js";
import { normaliseInput } from "../src/text/normaliseInput.js";
import { percent } from "../src/wording/wording.js";
import type { ToxicityExample } from "./dataset.js";

/**
 * Moderation's eval: the toxicity task (prompts/tasks/toxicity.json) classifies every line of eval/toxicity.jsonl
 * in one pass on its cached prefix, exactly as the bot does. It is scored on the five labels, and on what an admin
 * sees: whether an alert is raised (a label other than ok at or above the threshold). The threshold is chosen on
 * the dev split and only then applied to the split reported.
 */

export const TOXICITY_TASK = "toxicity";

export interface AlertScores {
  readonly threshold: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Alerts on lines whose gold label is ok: what moderators would have to dismiss. */
  readonly falseAlerts: number;
}

export interface ToxicityResults {
  readonly model: string;
  readonly split: string;
  readonly examples: number;
  readonly date: string;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly f1: Readonly<Record<string, number>>;
  /** Always "ok": the accuracy a moderator gets from a bot that never alerts. */
  readonly majorityAccuracy: number;
  /** Alert scores on dev for each threshold, where the threshold is chosen. */
  readonly thresholdSweep: readonly AlertScores[];
  readonly chosenOnDev: AlertScores | null;
  /** The dev-chosen threshold applied to the evaluated split: the figure to report. */
  readonly onSplit: AlertScores | null;
  readonly msPerMessage: number;
}

export interface ToxicityEvalOptions {
  readonly modelPath: string;
  readonly tasksDir: string;
  readonly examples: readonly ToxicityExample[];
  readonly devExamples: readonly ToxicityExample[];
  readonly split: string;
  readonly threads: number;
  readonly log?: (line: string) => void;
}

export async function runToxicityEval(options: ToxicityEvalOptions): Promise<ToxicityResults> {
  const task = loadTasks(options.tasksDir).find((one) => one.name === TOXICITY_TASK);
  if (!task || !isLabelTask(task)) throw new Error(`${options.tasksDir} has no ${TOXICITY_TASK} label task`);
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  const context = await model.createContext({ contextSize: 2048, sequences: 2, threads: options.threads });
  try {
    const chatWrapper = new ChatRunner(context.getSequence()).chatWrapper;
    const classifier = await LabelClassifier.create({
      llama,
      model,
      sequence: context.getSequence(),
      chatWrapper,
      labels: task.output.labels,
      tieBreak: task.output.labels[0] ?? "ok",
      renderTurns: (input) => renderTaskTurns(task as Task, input),
    });
    const classify = async (examples: readonly ToxicityExample[]) => {
      const results: LabelResult<string>[] = [];
      for (const example of examples) results.push(await classifier.classify(normaliseInput(example.text)));
      return results;
    };
    options.log?.(`toxicity on ${options.split}…`);
    const started = performance.now();
    const results = await classify(options.examples);
    const msPerMessage = (performance.now() - started) / Math.max(1, options.examples.length);
    const dev = options.split === "dev" ? results : await classify(options.devExamples);
    return scoreToxicity(
      options,
      basename(options.modelPath).replace(/\.gguf$/i, ""),
      results,
      dev,
      msPerMessage,
    );
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/** Scores a run: labels, the alert sweep on dev, and the dev-chosen threshold on the evaluated split. */
export function scoreToxicity(
  options: Pick<ToxicityEvalOptions, "examples" | "devExamples" | "split">,
  model: string,
  results: readonly LabelResult<string>[],
  dev: readonly LabelResult<string>[],
  msPerMessage: number,
): ToxicityResults {
  const labels = ["ok", "insult", "threat", "harassment", "spam"];
  const gold = options.examples.map((example) => example.label as string);
  const predicted = results.map((result) => result.label);
  const f1 = Object.fromEntries(labels.map((label) => [label, labelF1(gold, predicted, label)]));
  const thresholdSweep = THRESHOLDS.map((threshold) => alertScores(options.devExamples, dev, threshold));
  const chosenOnDev = chooseThreshold(thresholdSweep);
  return {
    model,
    split: options.split,
    examples: gold.length,
    date: new Date().toISOString().slice(0, 10),
    accuracy: gold.filter((label, i) => predicted[i] === label).length / Math.max(1, gold.length),
    macroF1: labels.reduce((sum, label) => sum + (f1[label] ?? 0), 0) / labels.length,
    f1,
    majorityAccuracy: gold.filter((label) => label === "ok").length / Math.max(1, gold.length),
    thresholdSweep,
    chosenOnDev,
    onSplit: chosenOnDev ? alertScores(options.examples, results, chosenOnDev.threshold) : null,
    msPerMessage,
  };
}

const THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/** The best alert F1 on dev; a tie goes to the higher threshold, which dismisses fewer false alerts. */
export function chooseThreshold(sweep: readonly AlertScores[]): AlertScores | null {
  let best: AlertScores | null = null;
  for (const point of sweep) if (!best || point.f1 >= best.f1) best = point;
  return best;
}

export function alertScores(
  examples: readonly ToxicityExample[],
  results: readonly LabelResult<string>[],
  threshold: number,
): AlertScores {
  let truePositive = 0;
  let falseAlerts = 0;
  let missed = 0;
  examples.forEach((example, i) => {
    const result = results[i];
    const alert = result !== undefined && result.label !== "ok" && result.confidence >= threshold;
    const harmful = example.label !== "ok";
    if (alert && harmful) truePositive++;
    else if (alert) falseAlerts++;
    else if (harmful) missed++;
  });
  const precision = truePositive + falseAlerts === 0 ? 0 : truePositive / (truePositive + falseAlerts);
  const recall = truePositive + missed === 0 ? 0 : truePositive / (truePositive + missed);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { threshold, precision, recall, f1, falseAlerts };
}

function labelF1(gold: readonly string[], predicted: readonly string[], label: string): number {
  const truePositive = gold.filter((g, i) => g === label && predicted[i] === label).length;
  const predictedAs = predicted.filter((p) => p === label).length;
  const actual = gold.filter((g) => g === label).length;
  const precision = predictedAs === 0 ? 0 : truePositive / predictedAs;
  const recall = actual === 0 ? 0 : truePositive / actual;
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

export function renderToxicityTable(results: ToxicityResults): string {
  const alert = (scores: AlertScores | null) =>
    scores === null
      ? "n/a"
      : `threshold ${scores.threshold}: precision ${percent(scores.precision)}, recall ${percent(scores.recall)}, F1 ${percent(scores.f1)}, ${scores.falseAlerts} false alerts`;
  return [
    `### Moderation (toxicity task): ${results.model}, ${results.split} split, ${results.examples} lines, ${results.date}`,
    "",
    "| | Accuracy | Macro-F1 | ok | insult | threat | harassment | spam | ms/message |",
    "|---|---|---|---|---|---|---|---|---|",
    `| toxicity task | ${percent(results.accuracy)} | ${percent(results.macroF1)} | ${["ok", "insult", "threat", "harassment", "spam"].map((label) => percent(results.f1[label] ?? 0)).join(" | ")} | ${results.msPerMessage.toFixed(0)} |`,
    `| always ok | ${percent(results.majorityAccuracy)} | | | | | | | |`,
    "",
    `Alerts with the threshold chosen on dev (${alert(results.chosenOnDev)}), on this split: ${alert(results.onSplit)}.`,
    "",
  ].join("\n");
}
