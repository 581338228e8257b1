import { createCanvas } from "@napi-rs/canvas";
import { SENTIMENT_LABELS, type SentimentLabel } from "./sentimentLabels.js";
import type { MoodCounts } from "./store/moodTally.js";

const COLOURS: Record<SentimentLabel, string> = {
  positive: "#3ba55d",
  negative: "#ed4245",
  neutral: "#8e9297",
};
const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { top: 28, right: 12, bottom: 28, left: 36 };

/**
 * A small stacked-bar chart of mood over time, as a PNG: one bar per bucket (an hour or a day), green positive,
 * red negative, grey neutral, drawn with @napi-rs/canvas (Skia, prebuilt for each platform).
 */
export function renderMoodChart(
  buckets: readonly MoodCounts[],
  labels: readonly string[],
  title: string,
): Buffer {
  const canvas = createCanvas(WIDTH, HEIGHT);
  const g = canvas.getContext("2d");
  g.fillStyle = "#2b2d31";
  g.fillRect(0, 0, WIDTH, HEIGHT);
  g.fillStyle = "#f2f3f5";
  g.font = "14px sans-serif";
  g.fillText(title, MARGIN.left, 18);

  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = buckets.map((counts) => SENTIMENT_LABELS.reduce((sum, label) => sum + counts[label], 0));
  const max = Math.max(1, ...totals);
  const slot = plotWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(2, slot * 0.7);

  g.font = "11px sans-serif";
  g.fillStyle = "#b5bac1";
  g.fillText(String(max), 4, MARGIN.top + 10);
  g.fillText("0", 4, MARGIN.top + plotHeight);

  buckets.forEach((counts, index) => {
    let y = MARGIN.top + plotHeight;
    const x = MARGIN.left + index * slot + (slot - barWidth) / 2;
    for (const label of SENTIMENT_LABELS) {
      const height = (counts[label] / max) * plotHeight;
      g.fillStyle = COLOURS[label];
      g.fillRect(x, y - height, barWidth, height);
      y -= height;
    }
    const caption = labels[index];
    const every = Math.ceil(buckets.length / 8);
    if (caption && index % every === 0) {
      g.fillStyle = "#b5bac1";
      g.fillText(caption, x, HEIGHT - 10);
    }
  });
  return canvas.toBuffer("image/png");
}
