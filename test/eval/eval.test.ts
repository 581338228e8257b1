import { once } from "node:events";
import { cpSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inProcessBot, openBot } from "../../eval/botMethod.js";
import { loadDataset, loadToxicityDataset } from "../../eval/dataset.js";
import { runEval } from "../../eval/evaluate.js";
import { loadConfig } from "../../src/platform/config.js";
import { REPO_ROOT, runEntryPoint } from "../../testkit/botProcess.js";
import { startLlamaServer } from "../../testkit/llamaServer.js";
import { tinyModel } from "../../testkit/models.js";

describe("the labelled set", () => {
  const all = loadDataset("all");

  it("has at least 600 messages, 250 per language, and a held-out split of at least 200", () => {
    expect(all.length).toBeGreaterThanOrEqual(600);
    expect(all.filter((e) => e.lang === "en").length).toBeGreaterThanOrEqual(250);
    expect(all.filter((e) => e.lang === "zh").length).toBeGreaterThanOrEqual(250);
    expect(loadDataset("holdout").length).toBeGreaterThanOrEqual(200);
    expect(loadDataset("dev").length + loadDataset("holdout").length).toBe(all.length);
  });

  it("has unique ids and texts, every label in both languages, and what a small model gets wrong, tagged", () => {
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(new Set(all.map((e) => e.text)).size).toBe(all.length);
    for (const lang of ["en", "zh"] as const) {
      for (const label of ["positive", "negative", "neutral"] as const) {
        expect(all.filter((e) => e.lang === lang && e.label === label).length).toBeGreaterThanOrEqual(40);
      }
    }
    expect(all.filter((e) => e.sarcasm).length).toBeGreaterThanOrEqual(40);
    // Sarcasm is flagged and tagged alike.
    expect(all.filter((e) => e.sarcasm !== e.tags.includes("sarcasm"))).toEqual([]);
    const minimum: Record<string, number> = {
      negation: 20,
      mixed: 20,
      "emoji-only": 10,
      code: 10,
      quote: 10,
      injection: 10,
      question: 20,
      short: 20,
      emoji: 10,
      slang: 10,
    };
    for (const [tag, count] of Object.entries(minimum)) {
      expect(all.filter((e) => e.tags.includes(tag)).length, tag).toBeGreaterThanOrEqual(count);
    }
    // Some pasted code carries a feeling and some does not.
    const code = all.filter((e) => e.tags.includes("code"));
    expect(new Set(code.map((e) => e.label)).size).toBe(3);
  });
});

describe("moderation's labelled set", () => {
  const all = loadToxicityDataset("all");
  const labels = ["ok", "insult", "threat", "harassment", "spam"] as const;

  it("has at least 200 lines written for the project, half in each language, every label in both", () => {
    expect(all.length).toBeGreaterThanOrEqual(200);
    for (const lang of ["en", "zh"] as const) {
      expect(all.filter((e) => e.lang === lang).length).toBeGreaterThanOrEqual(100);
      for (const label of labels) {
        expect(
          all.filter((e) => e.lang === lang && e.label === label).length,
          `${lang} ${label}`,
        ).toBeGreaterThanOrEqual(15);
      }
    }
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(new Set(all.map((e) => e.text)).size).toBe(all.length);
    expect(loadToxicityDataset("holdout").length).toBeGreaterThanOrEqual(60);
    // Translations share a pair id and a split: a held-out line's translation is never in dev.
    const splitOf = new Map<string, string>();
    for (const e of all) {
      expect(splitOf.get(e.pair) ?? e.split, e.pair).toBe(e.split);
      splitOf.set(e.pair, e.split);
    }
    // What a small model gets wrong is there on purpose: harsh words about things, game talk, quoted insults.
    for (const tag of ["profanity-at-thing", "violent-words", "quote", "banter", "injection", "link"]) {
      expect(all.filter((e) => e.label === "ok" && e.tags.includes(tag)).length, tag).toBeGreaterThanOrEqual(
        2,
      );
    }
  });
});

describe("npm run eval", () => {
  it("scores moderation's toxicity task, with the alert threshold chosen on dev", async () => {
    const model = await tinyModel({ extraWords: ["ok", "insult", "threat", "harassment", "spam"] });
    const out = await mkdtemp(join(tmpdir(), "moodbot-eval-toxicity-"));
    const run = await runEntryPoint(
      "eval/run.ts",
      { LLM_THREADS: "1" },
      { args: ["--task", "toxicity", "--model", model, "--split", "holdout", "--out", out] },
    );
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(0);
    expect(run.stdout()).toContain("### Moderation (toxicity task)");
    const name =
      model
        .split("/")
        .at(-1)
        ?.replace(/\.gguf$/, "") ?? "";
    const [results] = JSON.parse(await readFile(join(out, `${name}.toxicity.json`), "utf8"));
    expect(results.examples).toBe(loadToxicityDataset("holdout").length);
    expect(results.thresholdSweep).toHaveLength(10);
    expect(results.onSplit.threshold).toBe(results.chosenOnDev.threshold);
    const best = Math.max(...results.thresholdSweep.map((point: { f1: number }) => point.f1));
    expect(results.chosenOnDev.f1).toBe(best);
    expect(results.majorityAccuracy).toBeCloseTo(
      loadToxicityDataset("holdout").filter((e) => e.label === "ok").length / results.examples,
      10,
    );
  });

  it("runs every method, and a prompt variant beside the shipped prompts, end to end on a GGUF", async () => {
    const model = await tinyModel();
    const out = await mkdtemp(join(tmpdir(), "moodbot-eval-"));
    // A prompt variant: the shipped prompts with another instruction.
    const variant = await mkdtemp(join(tmpdir(), "moodbot-prompt-variant-"));
    cpSync(join(REPO_ROOT, "prompts"), variant, { recursive: true });
    writeFileSync(
      join(variant, "sentiment-system.txt"),
      "Label the mood of the chat message: positive, negative or neutral. Answer with the label only.",
    );
    const run = await runEntryPoint(
      "eval/run.ts",
      { LLM_THREADS: "1" },
      { args: ["--model", model, "--split", "holdout", "--prompts", variant, "--out", out] },
    );
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(0);
    const table = run.stdout();
    for (const title of [
      "one pass",
      "grammar-constrained",
      "2 greedy tokens",
      "task markers",
      "vote of 3",
      "AFINN",
      "VADER",
      "Chinese word list",
      `bot with the prompts in \`${variant}\``,
    ]) {
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
      "article-v2",
      "article-vote",
      "bot",
      "grammar",
      "lexicon",
      "lexicon-zh",
      "vader",
    ]);
    expect(Object.keys(results.promptVariants)).toEqual([variant]);
    // The tiny model is random, so the scores are near chance; what must hold is that every figure agrees with
    // the confusion matrix written beside it, which counts every held-out message once.
    type Scores = { accuracy: number; confusion: Record<string, Record<string, number>> };
    const scored = [...Object.entries(results.methods), ...Object.entries(results.promptVariants)] as Array<
      [string, Scores]
    >;
    for (const [method, scores] of scored) {
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
    for (const method of ["article", "article-v2", "article-vote"]) {
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

  it("reproduces the no-model baselines docs/quality.md quotes", async () => {
    const out = await mkdtemp(join(tmpdir(), "moodbot-eval-"));
    const run = await runEntryPoint(
      "eval/run.ts",
      {},
      { args: ["--methods", "lexicon,vader,lexicon-zh", "--out", out] },
    );
    expect((await run.exited).code).toBe(0);
    const quality = await readFile(join(REPO_ROOT, "docs", "quality.md"), "utf8");
    const rows = run
      .stdout()
      .split("\n")
      .filter((line) => /^\| (lexicon|VADER|Chinese word list)/.test(line));
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const [, name, accuracyCell, f1Cell, enCell, zhCell] = row.split("|").map((cell) => cell.trim());
      expect(quality).toContain(`| ${name} | ${accuracyCell} | ${f1Cell} | ${enCell} | ${zhCell} |`);
    }
  });

  it("--download fetches MODEL_URI with the bot's download code, then scores both splits and a README table", async () => {
    const model = await readFile(await tinyModel());
    const hub = createServer((request, response) => {
      response.writeHead(200, { "content-type": "application/octet-stream", "content-length": model.length });
      response.end(request.method === "HEAD" ? undefined : model);
    });
    hub.listen(0, "127.0.0.1");
    await once(hub, "listening");
    const { port } = hub.address() as AddressInfo;
    try {
      const modelsDir = await mkdtemp(join(tmpdir(), "moodbot-eval-models-"));
      const out = await mkdtemp(join(tmpdir(), "moodbot-eval-"));
      const run = await runEntryPoint(
        "eval/run.ts",
        {
          LLM_THREADS: "1",
          MODEL_URI: `http://127.0.0.1:${port}/model.gguf`,
          MODELS_DIR: modelsDir,
          MODEL_DOWNLOAD_TIMEOUT_S: "10",
        },
        { args: ["--download", "--methods", "bot,lexicon", "--out", out] },
      );
      expect((await run.exited).code, run.stderr()).toBe(0);
      expect((await readFile(join(modelsDir, "model.gguf"))).equals(model)).toBe(true);
      expect(run.stderr()).toMatch(/downloading http:\/\/127\.0\.0\.1:\d+\/model\.gguf: 100%/);
      const results = JSON.parse(await readFile(join(out, "model.json"), "utf8")) as Array<{ split: string }>;
      expect(results.map((result) => result.split)).toEqual(["dev", "holdout"]);
      const table = await readFile(join(out, "model.md"), "utf8");
      expect(table).toContain("README table: model `model.gguf`");
      expect(table).toMatch(/\| bot: one pass, label logits \| [\d.]+% \| [\d.]+ \| [\d.]+% \| [\d.]+ \|/);
    } finally {
      hub.close();
    }
  }, 120_000);
});

describe("the bot method on either runtime", () => {
  it("goes through the bot's Llm, so the same model scores the same in-process and on llama-server", async () => {
    const model = await tinyModel({ favouredToken: "positive" });
    const server = await startLlamaServer({ modelPath: model, threads: 1 });
    try {
      const examples = loadDataset("dev").slice(0, 12);
      const options = {
        modelPath: undefined,
        methods: ["bot"] as const,
        examples,
        devExamples: examples,
        split: "dev",
        neutralThreshold: 0,
        threads: 1,
      };
      const inProcess = await runEval({ ...options, openBot: inProcessBot(model, 1) });
      const serverConfig = loadConfig({ LLM_SERVER_URL: server.url }, "console").model;
      if (serverConfig.runtime !== "server")
        throw new Error("LLM_SERVER_URL did not choose the server runtime");
      const onServer = await runEval({ ...options, openBot: openBot(serverConfig) });
      expect(inProcess.botRuntime).toEqual({ kind: "in-process", method: "logits" });
      expect(onServer.botRuntime).toEqual({ kind: "llama.cpp", method: "logits" });
      expect(onServer.methods.bot?.confusion).toEqual(inProcess.methods.bot?.confusion);
      // The same prefix cached on both sides: only each message and the suffix are evaluated.
      expect(onServer.methods.bot?.meanEvaluatedTokens).toBeCloseTo(
        inProcess.methods.bot?.meanEvaluatedTokens ?? -1,
        6,
      );
      expect(onServer.thresholdSweep).toHaveLength(inProcess.thresholdSweep.length);
      expect(onServer.bestThreshold?.macroF1).toBeCloseTo(inProcess.bestThreshold?.macroF1 ?? -1, 6);
    } finally {
      await server.stop();
    }
  }, 240_000);
});
