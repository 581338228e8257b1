import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * The README is short because it links to docs/: a page that moves or a heading that is renamed must not leave a
 * reader at a dead link. Every relative link in README.md and docs/*.md names a file that exists and, where it names
 * a heading, one of that page's headings (as GitHub turns headings into anchors).
 */

const pages = ["README.md", ...readdirSync(join(REPO_ROOT, "docs")).map((name) => join("docs", name))].filter(
  (page) => page.endsWith(".md"),
);

/** The page's text outside fenced code blocks, where `](…)` is code, not a link. */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, "");

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replace(/ /g, "-");

const anchorsOf = (file: string) =>
  new Set(
    [...prose(readFileSync(file, "utf8")).matchAll(/^#{1,6} (.+)$/gm)].map(([, heading = ""]) =>
      anchorOf(heading),
    ),
  );

/** Each dead relative link of a page, as `target (why)`. */
const deadLinks = (page: string): string[] => {
  const file = join(REPO_ROOT, page);
  const dead: string[] = [];
  for (const [, target = ""] of prose(readFileSync(file, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target)) continue;
    const [path = "", anchor] = target.split("#");
    const linked = path === "" ? file : join(dirname(file), path);
    if (!existsSync(linked)) dead.push(`${target} (no file ${relative(REPO_ROOT, linked)})`);
    else if (anchor !== undefined && linked.endsWith(".md") && !anchorsOf(linked).has(anchor))
      dead.push(`${target} (no heading #${anchor} in ${relative(REPO_ROOT, linked)})`);
  }
  return dead;
};

describe("relative links in the README and docs/ resolve", () => {
  it.each(pages)("%s", (page) => {
    expect(deadLinks(page)).toEqual([]);
  });
});

it("links to every page in docs/ from the README", () => {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  for (const page of pages.filter((name) => name.startsWith("docs"))) expect(readme).toContain(`](${page})`);
});

it("turns headings into GitHub's anchors", () => {
  expect(anchorOf("The store: retention, deletions and managed Redis")).toBe(
    "the-store-retention-deletions-and-managed-redis",
  );
  expect(anchorOf("Every member's own controls")).toBe("every-members-own-controls");
});
