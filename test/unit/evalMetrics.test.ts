import { describe, expect, it } from "vitest";
import type { EvalExample } from "../../eval/dataset.js";
import { thresholdChosenOnDev } from "../../eval/evaluate.js";
import {
  accuracy,
  confusionMatrix,
  expectedCalibrationError,
  f1PerLabel,
  macroF1,
  type Prediction,
  percentile,
} from "../../eval/metrics.js";
import type { SentimentResult } from "../../src/llm/llm.js";
import type { SentimentLabel } from "../../src/platform/sentimentLabels.js";

// Ten messages, worked by hand:
//            predicted: pos neg neu other
//   gold positive (4):   3   0   1   0
//   gold negative (3):   1   1   0   1
//   gold neutral  (3):   0   1   2   0
const gold: SentimentLabel[] = [
  "positive",
  "positive",
  "positive",
  "positive",
  "negative",
  "negative",
  "negative",
  "neutral",
  "neutral",
  "neutral",
];
const predicted: Prediction[] = [
  "positive",
  "positive",
  "positive",
  "neutral",
  "positive",
  "negative",
  "other",
  "negative",
  "neutral",
  "neutral",
];

describe("eval metrics", () => {
  it("builds the confusion matrix, with answers outside the label set in their own column", () => {
    expect(confusionMatrix(gold, predicted)).toEqual({
      positive: { positive: 3, negative: 0, neutral: 1, other: 0 },
      negative: { positive: 1, negative: 1, neutral: 0, other: 1 },
      neutral: { positive: 0, negative: 1, neutral: 2, other: 0 },
    });
  });

  it("computes accuracy", () => {
    expect(accuracy(gold, predicted)).toBeCloseTo(6 / 10);
  });

  it("computes per-label and macro F1", () => {
    // positive: P = 3/4, R = 3/4 → F1 = 0.75
    // negative: P = 1/2, R = 1/3 → F1 = 2·(1/6)/(5/6) = 0.4
    // neutral:  P = 2/3, R = 2/3 → F1 = 2/3
    const f1 = f1PerLabel(confusionMatrix(gold, predicted));
    expect(f1.positive).toBeCloseTo(0.75);
    expect(f1.negative).toBeCloseTo(0.4);
    expect(f1.neutral).toBeCloseTo(2 / 3);
    expect(macroF1(confusionMatrix(gold, predicted))).toBeCloseTo((0.75 + 0.4 + 2 / 3) / 3);
  });

  it("scores a label that is never predicted nor present as 0, not NaN", () => {
    const matrix = confusionMatrix(["positive"], ["positive"]);
    expect(f1PerLabel(matrix)).toEqual({ positive: 1, negative: 0, neutral: 0 });
  });

  it("computes the expected calibration error over equal-width bins", () => {
    // Bin [0.9, 1.0): confidences 0.95, 0.95, accuracy 1/2 → gap 0.45, weight 2/4.
    // Bin [0.6, 0.7): confidences 0.6, 0.6, accuracy 1 → gap 0.4, weight 2/4.
    // ECE = 0.5·0.45 + 0.5·0.4 = 0.425
    expect(expectedCalibrationError([0.95, 0.95, 0.6, 0.6], [true, false, true, true])).toBeCloseTo(0.425);
    // Perfect calibration: 100% confident and always right.
    expect(expectedCalibrationError([1, 1, 1], [true, true, true])).toBeCloseTo(0);
    expect(expectedCalibrationError([], [])).toBe(0);
  });

  it("takes nearest-rank percentiles", () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("the neutral threshold", () => {
  const example = (id: number, label: SentimentLabel, split: "dev" | "holdout"): EvalExample => ({
    id,
    pair: `p${id}`,
    lang: "en",
    split,
    label,
    text: `message ${id}`,
    sarcasm: false,
    tags: [],
  });
  const measured = (label: SentimentLabel, confidence: number): SentimentResult => {
    const rest = (1 - confidence) / 2;
    const probabilities = { positive: rest, negative: rest, neutral: rest, [label]: confidence } as Record<
      SentimentLabel,
      number
    >;
    return { label, confidence, probabilities, method: "logits", evaluatedTokens: 5, truncated: false };
  };

  it("is chosen on dev and reported on the other split, never chosen where it is scored", () => {
    // On dev, the unsure "positive" answers are really neutral: a threshold of 0.55 turns them into right answers.
    const dev = {
      examples: [example(1, "neutral", "dev"), example(2, "neutral", "dev"), example(3, "positive", "dev")],
      raw: [measured("positive", 0.5), measured("positive", 0.52), measured("positive", 0.9)],
    };
    // On holdout the same unsure answers are right as they are: holdout alone would choose no threshold at all.
    const holdout = {
      examples: [example(4, "positive", "holdout"), example(5, "positive", "holdout")],
      raw: [measured("positive", 0.5), measured("positive", 0.52)],
    };
    const chosen = thresholdChosenOnDev(dev, holdout);
    expect(chosen.bestThreshold?.threshold).toBe(0.55);
    expect(chosen.bestThreshold?.accuracy).toBe(1);
    // Reported on holdout at the dev threshold: both answers become neutral there, and both are wrong.
    expect(chosen.bestThresholdOnSplit).toMatchObject({ threshold: 0.55, accuracy: 0, neutralShare: 1 });
    expect(chosen.thresholdSweep).toHaveLength(13);
  });
});
