import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { type BenchFindingsInput, renderCapacity, renderFindings } from "../../bench/findings.js";
import { loadDataset, loadToxicityDataset } from "../../eval/dataset.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * Every figure the README and docs/operations.md give for speed, memory and capacity is printed by committed code
 * from a committed run: these tests fail when a copy drifts from what the code renders.
 */

const read = (...path: string[]) => readFileSync(join(REPO_ROOT, ...path), "utf8");
const readme = read("README.md");
const results = JSON.parse(read("bench", "results.json")) as BenchFindingsInput;

it("the README's bench tables are bench/results.md's, as npm run bench wrote them", () => {
  const [tables = ""] = read("bench", "results.md").split("What the numbers say");
  expect(tables.trim().length).toBeGreaterThan(500);
  expect(readme).toContain(tables.trim());
});

it("the README's reading of the bench run is rendered from bench/results.json", () => {
  expect(readme).toContain(renderFindings(results));
});

it("the README's capacity plan is rendered from the measured stream in bench/results.json", () => {
  const capacity = renderCapacity(results);
  expect(capacity).toContain("| 100 | 15 |");
  expect(readme).toContain(capacity);
});

it("the README's moderation cost is bench/moderation.md, as npm run bench -- --moderation wrote it", () => {
  expect(readme).toContain(read("bench", "moderation.md").trim());
});

it("docs/operations.md carries bench/models.md, as npm run bench -- --shapes wrote it", () => {
  expect(read("docs", "operations.md")).toContain(read("bench", "models.md").trim());
});

it("the counts of the labelled set in README.md and eval/README.md are the set's own", () => {
  const all = loadDataset("all");
  const count = (keep: (line: (typeof all)[number]) => boolean) => all.filter(keep).length;
  const english = count((line) => line.lang === "en");
  const chinese = count((line) => line.lang === "zh");
  const held = all.filter((line) => line.split === "holdout");
  const flat = (text: string) => text.replace(/\s+/g, " ");
  expect(flat(readme)).toContain(
    `a labelled set of ${all.length} Discord-style messages written for this project (${english} English, ${chinese} Chinese), with a held-out split of ${held.length} lines`,
  );
  expect(flat(readme)).toContain(`${count((line) => line.sarcasm)} sarcastic lines`);
  const evalReadme = flat(read("eval", "README.md"));
  expect(evalReadme).toContain(`holds ${all.length} short messages`);
  expect(evalReadme).toContain(`${english} in English and ${chinese} in Chinese`);
  expect(evalReadme).toContain(`| \`id\` | 1 to ${all.length}, stable. |`);
  expect(evalReadme).toContain(
    `That is ${held.length} lines, ${held.filter((line) => line.lang === "en").length} English and ${held.filter((line) => line.lang === "zh").length} Chinese.`,
  );
});

it("the counts of moderation's labelled set in README.md are the set's own", () => {
  const all = loadToxicityDataset("all");
  const english = all.filter((line) => line.lang === "en").length;
  const chinese = all.filter((line) => line.lang === "zh").length;
  const held = all.filter((line) => line.split === "holdout").length;
  expect(readme.replace(/\s+/g, " ")).toContain(
    `\`eval/toxicity.jsonl\` is a labelled set of ${all.length} messages written for this project (${english} English, ${chinese} Chinese, translations of one another), for the toxicity task's five labels, with a held-out split of ${held} lines`,
  );
});
