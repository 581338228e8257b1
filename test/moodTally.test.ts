import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCanvas, GlobalFonts } from "@napi-rs/canvas";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketCounts } from "../commands/mood.js";
import { CHART_FONT_FAMILY, MoodChartRenderer } from "../src/discord/moodChart.js";
import { createLogger } from "../src/platform/logger.js";
import { DAY_MS, HOUR_MS } from "../src/platform/time.js";
import { openStore, type Store } from "../src/store/openStore.js";
import { WORDING } from "../src/wording/wording.js";
import { STORE_BACKENDS } from "./support/storeBackends.js";

const logger = createLogger({ level: "silent" });

describe.each(STORE_BACKENDS)("mood tallies on $name", ({ setUp }) => {
  let backend: { url: string; tearDown: () => Promise<void> };
  let store: Store;
  beforeAll(async () => {
    backend = await setUp();
    store = await openStore(backend.url, logger);
  });
  afterAll(async () => {
    await store?.close();
    await backend?.tearDown();
  });

  it("counts labels per channel and hour, losing no increment under concurrency", async () => {
    const channel = `c${Math.random().toString(36).slice(2)}`;
    const hour = 480_000;
    const at = hour * HOUR_MS + 5;
    await Promise.all([
      ...Array.from({ length: 30 }, () => store.moods.record(channel, "positive", at)),
      ...Array.from({ length: 7 }, () => store.moods.record(channel, "negative", at)),
      store.moods.record(channel, "neutral", at + HOUR_MS),
      store.moods.record(`${channel}-other`, "negative", at),
    ]);
    expect(await store.moods.hours(channel, hour - 1, hour + 1)).toEqual([
      { positive: 0, negative: 0, neutral: 0 },
      { positive: 30, negative: 7, neutral: 0 },
      { positive: 0, negative: 0, neutral: 1 },
    ]);
  });

  it("counts increments still in flight when asked, as a reaction records without waiting", async () => {
    const channel = `c${Math.random().toString(36).slice(2)}`;
    const hour = 480_010;
    const recorded = Array.from({ length: 3 }, () => store.moods.record(channel, "positive", hour * HOUR_MS));
    expect(await store.moods.hours(channel, hour, hour)).toEqual([{ positive: 3, negative: 0, neutral: 0 }]);
    await Promise.all(recorded);
  });

  it("deletes increments still in flight when asked: a count recorded before a deletion is not written back", async () => {
    const channel = `c${Math.random().toString(36).slice(2)}`;
    const member = { guildId: "g1", memberId: `m${Math.random().toString(36).slice(2)}` };
    const hour = 480_020;
    const at = hour * HOUR_MS;
    const recorded = [
      ...Array.from({ length: 3 }, () => store.moods.record(channel, "negative", at)),
      store.moods.recordMember(member, "positive", at, 30),
    ];
    await Promise.all([
      store.moods.forgetChannel(channel, hour, hour),
      store.moods.forgetMember(member, Math.floor(at / DAY_MS), Math.floor(at / DAY_MS)),
    ]);
    await Promise.all(recorded);
    expect(await store.moods.hours(channel, hour, hour)).toEqual([{ positive: 0, negative: 0, neutral: 0 }]);
    const day = Math.floor(at / DAY_MS);
    expect(await store.moods.memberDays(member, day, day)).toEqual([
      { positive: 0, negative: 0, neutral: 0 },
    ]);
  });
});

describe("the /mood chart", () => {
  it("sums hours into days", () => {
    const hour = (p: number) => ({ positive: p, negative: 1, neutral: 0 });
    expect(bucketCounts([hour(1), hour(2), hour(3)], 2)).toEqual([
      { positive: 3, negative: 2, neutral: 0 },
      { positive: 3, negative: 1, neutral: 0 },
    ]);
  });

  it("renders a 640×260 PNG", () => {
    const png = new MoodChartRenderer().render(
      [
        { positive: 3, negative: 1, neutral: 2 },
        { positive: 0, negative: 0, neutral: 0 },
      ],
      ["0h", "1h"],
      { title: "Mood", legend: WORDING.en.labels },
    );
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.readUInt32BE(16)).toBe(640);
    expect(png.readUInt32BE(20)).toBe(260);
  });
});

describe("the chart font", () => {
  /** The pixels of one line of text drawn in the chart's font. */
  function drawn(text: string): Buffer {
    const canvas = createCanvas(120, 40);
    const g = canvas.getContext("2d");
    g.fillStyle = "#000";
    g.fillRect(0, 0, 120, 40);
    g.fillStyle = "#fff";
    g.font = `24px "${CHART_FONT_FAMILY}"`;
    g.fillText(text, 4, 30);
    return Buffer.from(g.getImageData(0, 0, 120, 40).data);
  }

  it("is bundled and registered, and has Chinese glyphs: 情绪 is drawn, not the missing-glyph box", () => {
    new MoodChartRenderer();
    expect(GlobalFonts.has(CHART_FONT_FAMILY)).toBe(true);
    const missing = drawn("\u{10FFFD}\u{10FFFD}");
    expect(drawn("情绪").equals(missing)).toBe(false);
    expect(drawn("情绪").equals(drawn("情感"))).toBe(false);
  });

  it("draws the chart's title and legend in both languages with real glyphs (written to the temp folder to look at)", async () => {
    const renderer = new MoodChartRenderer();
    const days = [
      { positive: 4, negative: 1, neutral: 2 },
      { positive: 1, negative: 3, neutral: 1 },
      { positive: 0, negative: 0, neutral: 0 },
    ];
    const captions = ["11-28", "11-29", "11-30"];
    // The same text as missing glyphs: a chart whose font lacks the words draws the very same boxes.
    const boxes = (text: string) => "\u{10FFFD}".repeat([...text].length);
    for (const language of ["en", "zh"] as const) {
      const { labels, moodChartTitle } = WORDING[language];
      const title = moodChartTitle(true);
      const png = renderer.render(days, captions, { title, legend: labels });
      await writeFile(join(tmpdir(), `moodbot-chart-${language}.png`), png);
      const boxedLegend = {
        positive: boxes(labels.positive),
        negative: boxes(labels.negative),
        neutral: boxes(labels.neutral),
      };
      expect(png.equals(renderer.render(days, captions, { title, legend: boxedLegend }))).toBe(false);
      expect(png.equals(renderer.render(days, captions, { title: boxes(title), legend: labels }))).toBe(
        false,
      );
    }
  });
});
