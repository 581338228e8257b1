import { SENTIMENT_LABELS, type SentimentLabel } from "../src/platform/sentimentLabels.js";

/** A prediction outside the label set (the article's method can produce one). */
export const OUT_OF_SET = "other";
export type Prediction = SentimentLabel | typeof OUT_OF_SET;

/** rows: gold label, columns: predicted label (the three labels, then "other"). */
export type Confusion = Record<SentimentLabel, Record<Prediction, number>>;

export function confusionMatrix(
  gold: readonly SentimentLabel[],
  predicted: readonly Prediction[],
): Confusion {
  const matrix = {} as Confusion;
  for (const row of SENTIMENT_LABELS) {
    matrix[row] = { positive: 0, negative: 0, neutral: 0, other: 0 };
  }
  gold.forEach((label, i) => {
    const prediction = predicted[i] ?? OUT_OF_SET;
    matrix[label][prediction]++;
  });
  return matrix;
}

export function accuracy(gold: readonly SentimentLabel[], predicted: readonly Prediction[]): number {
  if (gold.length === 0) return 0;
  return gold.filter((label, i) => predicted[i] === label).length / gold.length;
}

/** Per-label F1 from the confusion matrix; a label never predicted nor present scores 0. */
export function f1PerLabel(matrix: Confusion): Record<SentimentLabel, number> {
  const scores = {} as Record<SentimentLabel, number>;
  for (const label of SENTIMENT_LABELS) {
    const truePositive = matrix[label][label];
    const predictedAs = SENTIMENT_LABELS.reduce((sum, row) => sum + matrix[row][label], 0);
    const actual = Object.values(matrix[label]).reduce((sum, count) => sum + count, 0);
    const precision = predictedAs === 0 ? 0 : truePositive / predictedAs;
    const recall = actual === 0 ? 0 : truePositive / actual;
    scores[label] = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  }
  return scores;
}

export function macroF1(matrix: Confusion): number {
  const scores = f1PerLabel(matrix);
  return SENTIMENT_LABELS.reduce((sum, label) => sum + scores[label], 0) / SENTIMENT_LABELS.length;
}

/**
 * Expected calibration error: predictions are put in `bins` equal-width confidence bins, and the gaps between
 * each bin's mean confidence and its accuracy are averaged, weighted by the bin's share of predictions.
 */
export function expectedCalibrationError(
  confidences: readonly number[],
  correct: readonly boolean[],
  bins = 10,
): number {
  if (confidences.length === 0) return 0;
  const sums = Array.from({ length: bins }, () => ({ count: 0, confidence: 0, correct: 0 }));
  confidences.forEach((confidence, i) => {
    const bin = sums[Math.min(bins - 1, Math.floor(confidence * bins))];
    if (!bin) return;
    bin.count++;
    bin.confidence += confidence;
    bin.correct += correct[i] ? 1 : 0;
  });
  let error = 0;
  for (const bin of sums) {
    if (bin.count === 0) continue;
    error +=
      (bin.count / confidences.length) * Math.abs(bin.confidence / bin.count - bin.correct / bin.count);
  }
  return error;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
  );
}
