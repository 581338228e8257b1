import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type BenchFindingsInput, renderCapacity, renderFindings } from "../../bench/findings.js";
import { type BenchTableInput, renderTable } from "../../bench/resultsTable.js";
import { loadDataset, loadToxicityDataset } from "../../eval/dataset.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";
import { SOAK_RSS_GROWTH_LIMIT_MB } from "../../testkit/soak.js";

/*
 * Every figure docs/performance.md and docs/operations.md give for speed, memory and capacity is printed by committed
 * code from a committed run, and the counts docs/quality.md and docs/testing.md give are the data's and the code's
 * own: these tests fail when a copy drifts from what the code renders.
 */

const read = (...path: string[]) => readFileSync(join(REPO_ROOT, ...path), "utf8");
const performance = read("docs", "performance.md");
const quality = read("docs", "quality.md");
const results = JSON.parse(read("bench", "results.json")) as BenchFindingsInput & BenchTableInput;

it("docs/performance.md's bench tables, and bench/results.md's, are what bench/resultsTable.ts renders from bench/results.json", () => {
  const tables = renderTable(results);
  expect(read("bench", "results.md").startsWith(tables)).toBe(true);
  expect(performance).toContain(tables.trim());
});

it("docs/performance.md's reading of the bench run is rendered from bench/results.json", () => {
  expect(performance).toContain(renderFindings(results));
});

it("docs/performance.md's capacity plan is rendered from the measured stream in bench/results.json, and adds up", () => {
  const capacity = renderCapacity(results);
  // The plan's own figure: a fifth of the time kept for mentions, off the stream's measured rate.
  const measured = results.throughput.streamCacheOn?.perSecond ?? Number.NaN;
  const plannable = Number(capacity.match(/leaves about ([\d.]+) messages a second/)?.[1]);
  expect(plannable).toBeCloseTo(measured * 0.8, 1);
  // Each planned rate gets the fewest processes that carry it.
  const rows = [...capacity.matchAll(/^\| (\d+) \| (\d+) \|$/gm)].map(([, rate, processes]) => [
    Number(rate),
    Number(processes),
  ]);
  expect(rows.map(([rate]) => rate)).toEqual([25, 50, 100]);
  for (const [rate = 0, processes = 0] of rows) {
    expect(processes * plannable).toBeGreaterThanOrEqual(rate);
    expect((processes - 1) * plannable).toBeLessThan(rate);
  }
  expect(performance).toContain(capacity);
});

describe("the bench's text names the machine the run measured", () => {
  const elsewhere = {
    ...results,
    machine: { ...results.machine, cpu: "Test CPU 9000", cores: 8, backend: "cuda" },
    process: { ...results.process, backend: "cuda" },
  };
  const rendered = (r: typeof results) => [renderTable(r), renderFindings(r), renderCapacity(r)].join("\n");

  it("on the committed run: its core count, CPU and backend", () => {
    const text = rendered(results);
    expect(results.machine.backend).toBe("cpu");
    expect(text).toContain(`${results.machine.cores}-core process`);
    expect(text).toContain(`(${results.machine.cpu}, no GPU)`);
    expect(text).toContain("with the model on the CPU (no GPU backend in use)");
  });

  it("on another machine: its own, and nothing of the committed one", () => {
    const text = rendered(elsewhere);
    expect(text).toContain("eight cores, Test CPU 9000");
    expect(text).toContain("the cuda backend");
    expect(text).toContain("with the model on the cuda GPU backend");
    expect(text).toContain("8-core cuda processes");
    expect(text).not.toMatch(/two cores|\b2-core|no GPU|AMD EPYC/);
  });

  it("says which part of a pass's cost dominates, from the fitted costs", () => {
    const tokenHeavy = { ...results, passCost: { ...results.passCost, fixedMs: 0.001 } };
    expect(renderFindings(tokenHeavy)).toContain("per-token compute dominates");
    expect(renderFindings(tokenHeavy)).not.toContain("the fixed cost of a pass dominates");
    const fixedHeavy = { ...results, passCost: { ...results.passCost, fixedMs: 10_000 } };
    expect(renderFindings(fixedHeavy)).toContain("the fixed cost of a pass dominates");
    expect(renderFindings(fixedHeavy)).not.toContain("per-token compute dominates");
  });
});

it("docs/testing.md's soak bound is the one the soak test and npm run soak check (testkit/soak.ts)", () => {
  expect(read("docs", "testing.md").replace(/\s+/g, " ")).toContain(
    `that RSS grew less than ${SOAK_RSS_GROWTH_LIMIT_MB} MB after warm-up`,
  );
});

it("docs/performance.md's moderation cost is bench/moderation.md, as npm run bench -- --moderation wrote it", () => {
  expect(performance).toContain(read("bench", "moderation.md").trim());
});

it("docs/operations.md carries bench/models.md, as npm run bench -- --shapes wrote it", () => {
  expect(read("docs", "operations.md")).toContain(read("bench", "models.md").trim());
});

it("the counts of the labelled set in docs/quality.md and eval/README.md are the set's own", () => {
  const all = loadDataset("all");
  const count = (keep: (line: (typeof all)[number]) => boolean) => all.filter(keep).length;
  const english = count((line) => line.lang === "en");
  const chinese = count((line) => line.lang === "zh");
  const held = all.filter((line) => line.split === "holdout");
  const flat = (text: string) => text.replace(/\s+/g, " ");
  expect(flat(quality)).toContain(
    `a labelled set of ${all.length} Discord-style messages written for this project (${english} English, ${chinese} Chinese), with a held-out split of ${held.length} lines`,
  );
  expect(flat(quality)).toContain(`${count((line) => line.sarcasm)} sarcastic lines`);
  const evalReadme = flat(read("eval", "README.md"));
  expect(evalReadme).toContain(`holds ${all.length} short messages`);
  expect(evalReadme).toContain(`${english} in English and ${chinese} in Chinese`);
  expect(evalReadme).toContain(`| \`id\` | 1 to ${all.length}, stable. |`);
  expect(evalReadme).toContain(
    `That is ${held.length} lines, ${held.filter((line) => line.lang === "en").length} English and ${held.filter((line) => line.lang === "zh").length} Chinese.`,
  );
});

it("the counts of moderation's labelled set in docs/quality.md are the set's own", () => {
  const all = loadToxicityDataset("all");
  const english = all.filter((line) => line.lang === "en").length;
  const chinese = all.filter((line) => line.lang === "zh").length;
  const held = all.filter((line) => line.split === "holdout").length;
  expect(quality.replace(/\s+/g, " ")).toContain(
    `\`eval/toxicity.jsonl\` is a labelled set of ${all.length} messages written for this project (${english} English, ${chinese} Chinese, translations of one another), for the toxicity task's five labels, with a held-out split of ${held} lines`,
  );
});
