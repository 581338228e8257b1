import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadDataset } from "../../eval/dataset.js";
import { runEval } from "../../eval/evaluate.js";
import { runEntryPoint } from "../../testkit/botProcess.js";
import { tinyModel } from "../../testkit/models.js";

describe("the labelled set", () => {
  const all = loadDataset("all");

  it("has at least 400 messages, 150 per language, and a held-out split of at least 100", () => {
    expect(all.length).toBeGreaterThanOrEqual(400);
    expect(all.filter((e) => e.lang === "en").length).toBeGreaterThanOrEqual(150);
    expect(all.filter((e) => e.lang === "zh").length).toBeGreaterThanOrEqual(150);
    expect(loadDataset("holdout").length).toBeGreaterThanOrEqual(100);
    expect(loadDataset("dev").length + loadDataset("holdout").length).toBe(all.length);
  });

  it("has unique ids and texts, every label in both languages, and flagged sarcasm", () => {
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(new Set(all.map((e) => e.text)).size).toBe(all.length);
    for (const lang of ["en", "zh"] as const) {
      for (const label of ["positive", "negative", "neutral"] as const) {
        expect(all.filter((e) => e.lang === lang && e.label === label).length).toBeGreaterThanOrEqual(40);
      }
    }
    expect(all.filter((e) => e.sarcasm).length).toBeGreaterThanOrEqual(10);
    for (const tag of ["negation", "mixed", "question", "code", "short", "emoji", "slang"]) {
      expect(
        all.some((e) => e.tags.includes(tag)),
        tag,
      ).toBe(true);
    }
  });
});

describe("npm run eval", () => {
  it("runs every method end to end on a GGUF and writes the results", async () => {
    const model = await tinyModel();
    const out = await mkdtemp(join(tmpdir(), "moodbot-eval-"));
    const run = await runEntryPoint(
      "eval/run.ts",
      { LLM_THREADS: "1" },
      { args: ["--model", model, "--split", "holdout", "--out", out] },
    );
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(0);
    const table = run.stdout();
    for (const title of ["one pass", "grammar-constrained", "2 greedy tokens", "vote of 3", "lexicon"]) {
      expect(table).toContain(title);
    }
    const name =
      model
        .split("/")
        .at(-1)
        ?.replace(/\.gguf$/, "") ?? "";
    const results = JSON.parse(await readFile(join(out, `${name}.json`), "utf8"));
    expect(results.examples).toBe(loadDataset("holdout").length);
    expect(Object.keys(results.methods).sort()).toEqual([
      "article",
      "article-vote",
      "bot",
      "grammar",
      "lexicon",
    ]);
    // The tiny model is random, so the scores are near chance; what must hold is that every figure agrees with
    // the confusion matrix written beside it, which counts every held-out message once.
    type Scores = { accuracy: number; confusion: Record<string, Record<string, number>> };
    for (const [method, scores] of Object.entries(results.methods) as Array<[string, Scores]>) {
      const rows = Object.entries(scores.confusion);
      const total = rows.reduce((sum, [, row]) => sum + Object.values(row).reduce((a, b) => a + b, 0), 0);
      const correct = rows.reduce((sum, [label, row]) => sum + (row[label] ?? 0), 0);
      expect(total, method).toBe(results.examples);
      expect(scores.accuracy, method).toBeCloseTo(correct / total, 10);
    }
    // The neutral threshold is chosen on dev (the sweep) and reported on the held-out split at that value.
    expect(results.thresholdSweep).toHaveLength(13);
    expect(results.bestThresholdOnSplit.threshold).toBe(results.bestThreshold.threshold);
    expect(table).toContain(`chosen on dev: ${results.bestThreshold.threshold}`);
    // The article's answers with neither word are its neutral, scored as such and counted beside the scores.
    for (const method of ["article", "article-vote"]) {
      const scores = results.methods[method];
      const other = Object.values(scores.confusion as Record<string, Record<string, number>>).reduce(
        (sum, row) => sum + (row.other ?? 0),
        0,
      );
      expect(other, method).toBe(0);
      const neutral = Object.values(scores.confusion as Record<string, Record<string, number>>).reduce(
        (sum, row) => sum + (row.neutral ?? 0),
        0,
      );
      expect(scores.neitherRate * results.examples, method).toBeLessThanOrEqual(neutral);
    }
    expect(results.methods.bot.neitherRate).toBeNull();
    // Measured, not constructed: the bot evaluates only the message over its cached prefix.
    expect(results.methods.bot.meanEvaluatedTokens).toBeLessThan(results.methods.article.meanEvaluatedTokens);
  }, 240_000);

  it("classifies what the bot would: normalised text, with SENTIMENT_NEUTRAL_THRESHOLD applied", async () => {
    const example = (id: number, text: string) => ({
      id,
      pair: `p${id}`,
      lang: "en" as const,
      split: "dev" as const,
      label: "neutral" as const,
      text,
      sarcasm: false,
      tags: [],
    });
    const model = await tinyModel();
    const run = (examples: ReturnType<typeof example>[], neutralThreshold: number) =>
      runEval({
        modelPath: model,
        methods: ["bot"],
        examples,
        devExamples: examples,
        split: "dev",
        neutralThreshold,
        threads: 1,
      });
    // Zero-width and bidi characters only: the bot normalises this to nothing, never asks the model, and does not
    // react; the eval counts it as neutral, at no cost.
    const invisible = await run([example(1, "\u200b\u200d\u202e")], 0);
    expect(invisible.methods.bot?.meanEvaluatedTokens).toBe(0);
    expect(invisible.methods.bot?.confusion.neutral.neutral).toBe(1);
    // A threshold above every confidence the random model gives turns each answer neutral, as the bot would.
    const texts = ["the raid resets on tuesday", "this is awful", "best day ever"].map((text, i) =>
      example(i + 2, text),
    );
    const strict = await run(texts, 0.99);
    expect(strict.methods.bot?.confusion.neutral).toMatchObject({ neutral: 3, positive: 0, negative: 0 });
    expect(strict.neutralThreshold).toBe(0.99);
  }, 120_000);

  it("reproduces the lexicon baseline the README quotes", async () => {
    const out = await mkdtemp(join(tmpdir(), "moodbot-eval-"));
    const run = await runEntryPoint("eval/run.ts", {}, { args: ["--methods", "lexicon", "--out", out] });
    expect((await run.exited).code).toBe(0);
    const readme = await readFile("README.md", "utf8");
    const row = run
      .stdout()
      .split("\n")
      .find((line) => line.startsWith("| lexicon"));
    expect(row).toBeDefined();
    const [, name, accuracyCell, f1Cell, enCell, zhCell] = (row ?? "").split("|").map((cell) => cell.trim());
    expect(readme).toContain(`| ${name} | ${accuracyCell} | ${f1Cell} | ${enCell} | ${zhCell} |`);
  });
});
