import { createRequire } from "node:module";
import { createCanvas, GlobalFonts, type SKRSContext2D } from "@napi-rs/canvas";
import { MoodbotError } from "../platform/errors.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "../platform/sentimentLabels.js";
import type { MoodCounts } from "../store/moodTally.js";

const COLOURS: Record<SentimentLabel, string> = {
  positive: "#3ba55d",
  negative: "#ed4245",
  neutral: "#8e9297",
};
const WIDTH = 640;
const HEIGHT = 260;
const MARGIN = { top: 30, right: 12, bottom: 46, left: 36 };
/** The family the bundled font is registered under. */
export const CHART_FONT_FAMILY = "Noto Sans SC";
/** Noto Sans SC Regular (OFL), from the npm registry: Latin and Chinese in one font, so both languages draw. */
const BUNDLED_FONT = "@expo-google-fonts/noto-sans-sc/400Regular/NotoSansSC_400Regular.ttf";

/** The chart's words, in the reader's language. */
export interface ChartText {
  readonly title: string;
  readonly legend: Readonly<Record<SentimentLabel, string>>;
}

/** The chart font could not be loaded: a broken install, which `npm install` mends. */
export class ChartFontError extends MoodbotError {
  override readonly name = "ChartFontError";
  constructor(readonly fontPath: string) {
    super(`The chart font ${fontPath} could not be loaded. Run npm install again to restore it.`);
  }
}

/**
 * Draws the mood charts: stacked bars over time (an hour or a day each), green positive, red negative, grey
 * neutral, with a legend, as a PNG drawn by @napi-rs/canvas (Skia). Skia's default fonts have no Chinese, so the
 * renderer registers the bundled Noto Sans SC when it is built (once per process is enough; again is harmless).
 */
export class MoodChartRenderer {
  constructor(fontPath: string = createRequire(import.meta.url).resolve(BUNDLED_FONT)) {
    if (GlobalFonts.registerFromPath(fontPath, CHART_FONT_FAMILY) === null)
      throw new ChartFontError(fontPath);
  }

  render(buckets: readonly MoodCounts[], captions: readonly string[], text: ChartText): Buffer {
    const canvas = createCanvas(WIDTH, HEIGHT);
    const g = canvas.getContext("2d");
    g.fillStyle = "#2b2d31";
    g.fillRect(0, 0, WIDTH, HEIGHT);
    g.fillStyle = "#f2f3f5";
    g.font = font(15);
    g.fillText(text.title, MARGIN.left, 20);

    const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
    const totals = buckets.map((counts) => SENTIMENT_LABELS.reduce((sum, label) => sum + counts[label], 0));
    const max = Math.max(1, ...totals);
    g.font = font(11);
    g.fillStyle = "#b5bac1";
    g.fillText(String(max), 4, MARGIN.top + 10);
    g.fillText("0", 4, MARGIN.top + plotHeight);
    drawBars(g, buckets, captions, max, plotHeight);
    drawLegend(g, text.legend);
    return canvas.toBuffer("image/png");
  }
}

const font = (size: number) => `${size}px "${CHART_FONT_FAMILY}"`;

function drawBars(
  g: SKRSContext2D,
  buckets: readonly MoodCounts[],
  captions: readonly string[],
  max: number,
  plotHeight: number,
): void {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const slot = plotWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(2, slot * 0.7);
  const every = Math.ceil(buckets.length / 8);
  buckets.forEach((counts, index) => {
    let y = MARGIN.top + plotHeight;
    const x = MARGIN.left + index * slot + (slot - barWidth) / 2;
    for (const label of SENTIMENT_LABELS) {
      const height = (counts[label] / max) * plotHeight;
      g.fillStyle = COLOURS[label];
      g.fillRect(x, y - height, barWidth, height);
      y -= height;
    }
    const caption = captions[index];
    if (caption && index % every === 0) {
      g.fillStyle = "#b5bac1";
      g.fillText(caption, x, MARGIN.top + plotHeight + 16);
    }
  });
}

/** A swatch and a name per label, along the bottom edge. */
function drawLegend(g: SKRSContext2D, legend: Readonly<Record<SentimentLabel, string>>): void {
  const y = HEIGHT - 12;
  let x = MARGIN.left;
  g.font = font(12);
  for (const label of SENTIMENT_LABELS) {
    g.fillStyle = COLOURS[label];
    g.fillRect(x, y - 10, 12, 12);
    g.fillStyle = "#f2f3f5";
    g.fillText(legend[label], x + 18, y);
    x += 18 + g.measureText(legend[label]).width + 24;
  }
}
