import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { type BenchFindingsInput, renderCapacity, renderFindings } from "../../bench/findings.js";
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

it("docs/operations.md carries bench/models.md, as npm run bench -- --shapes wrote it", () => {
  expect(read("docs", "operations.md")).toContain(read("bench", "models.md").trim());
});
