import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/*
 * src/ has one folder per part (docs/architecture.md, "The parts"), and only the entry points lie loose at its top:
 * the Dockerfile and compose.yaml start them as src/index.js, src/sharded.js and src/modelCli.js. The page shows
 * the tree as it is: every folder of src/ is on it, and every file it names exists.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ENTRY_POINTS = ["console.ts", "index.ts", "modelCli.ts", "sharded.ts"];
const ARCHITECTURE = "docs/architecture.md";

/** Every folder under src/, as "src/a/b/". */
function sourceFolders(): string[] {
  return readdirSync(join(ROOT, "src"), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => `${join(entry.parentPath, entry.name).slice(ROOT.length + 1)}/`)
    .sort();
}

describe("the source tree", () => {
  it("has only the entry points loose at the top of src/", () => {
    const loose = readdirSync(join(ROOT, "src"), { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort();
    expect(loose).toEqual(ENTRY_POINTS);
  });

  it(`is shown in ${ARCHITECTURE}: every folder of src/ is on it, and every file it names exists`, () => {
    const page = readFileSync(join(ROOT, ARCHITECTURE), "utf8");
    const folders = sourceFolders();
    expect(folders).toContain("src/llm/inProcess/");
    expect(folders.filter((folder) => !page.includes(folder))).toEqual([]);
    const named = [...page.matchAll(/\bsrc\/[\w/]*\w\.ts\b/g)].map(([path]) => path);
    expect(named.length).toBeGreaterThan(10);
    expect([...new Set(named)].filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
  });
});
