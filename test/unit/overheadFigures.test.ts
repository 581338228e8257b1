import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { type OverheadCost, renderOverhead } from "../../bench/overhead.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * docs/performance.md's figure for what a reaction costs beyond its pass is printed by committed code from a committed run:
 * `npm run bench -- --overhead` writes bench/overhead.json and renders bench/overhead.md from it.
 */

const read = (...path: string[]) => readFileSync(join(REPO_ROOT, ...path), "utf8");

it("bench/overhead.md is what bench/overhead.ts renders from bench/overhead.json", () => {
  const cost = JSON.parse(read("bench", "overhead.json")) as OverheadCost;
  expect(cost.runs.map((run) => run.backend)).toEqual(["sqlite", "redis"]);
  expect(read("bench", "overhead.md")).toBe(renderOverhead(cost));
});

it("docs/performance.md carries bench/overhead.md as npm run bench -- --overhead wrote it", () => {
  expect(read("docs", "performance.md")).toContain(read("bench", "overhead.md").trim());
});
