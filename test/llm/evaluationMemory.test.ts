import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { NODE_RUNTIME_FLAGS } from "../../src/runtimeFlags.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";
import { tinyModel } from "../../testkit/models.js";

const run = promisify(execFile);
const PASSES = 200;
/** What each evaluation's sampler holds until V8 collects it: one 12-byte entry per vocabulary token. */
const QWEN_VOCABULARY = 151_936;
const SAMPLER_MB = (QWEN_VOCABULARY * 12) / 1024 / 1024;

async function growthMb(flags: readonly string[], width = 1): Promise<number> {
  const model = await tinyModel({ vocabularySize: QWEN_VOCABULARY });
  const script = join(REPO_ROOT, "test", "support", "evaluationMemory.ts");
  const { stdout } = await run(
    process.execPath,
    [...flags, "--import", import.meta.resolve("tsx"), script, model, String(PASSES), String(width)],
    { cwd: REPO_ROOT, timeout: 120_000 },
  );
  return (JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { growthMb: number }).growthMb;
}

describe("memory held by evaluations", () => {
  it("every npm script that runs the repo's code with node passes the runtime flags", () => {
    const scripts = (
      JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    const nodeScripts = Object.entries(scripts).filter(([, line]) => line.startsWith("node "));
    expect(nodeScripts.map(([name]) => name).sort()).toEqual(
      ["bench", "console", "deploy-commands", "eval", "model", "soak", "start", "start:sharded"].sort(),
    );
    for (const [, line] of nodeScripts) {
      expect(line.startsWith(`node ${NODE_RUNTIME_FLAGS.join(" ")} --import tsx `)).toBe(true);
    }
  });

  it(`stays bounded over ${PASSES} sentiment passes with a 152k vocabulary, where V8's defaults let it pile up`, async () => {
    const [bounded, unbounded] = [await growthMb(NODE_RUNTIME_FLAGS), await growthMb([])];
    // Without the flags the samplers are not collected during the run: nearly all of them are still held.
    expect(unbounded).toBeGreaterThan(0.6 * PASSES * SAMPLER_MB);
    // With them, a few dozen at most are waiting at any time.
    expect(bounded).toBeLessThan(30 * SAMPLER_MB);
  }, 240_000);

  it("stays bounded when bursts of classifications share passes, where a small young generation alone does not", async () => {
    const youngGenerationOnly = NODE_RUNTIME_FLAGS.filter((flag) => flag !== "--expose-gc");
    const [bounded, unbounded] = [
      await growthMb(NODE_RUNTIME_FLAGS, 2),
      await growthMb(youngGenerationOnly, 2),
    ];
    // In bursts sharing passes, the samplers outlive young-generation collections: most of them are still held.
    expect(unbounded).toBeGreaterThan(0.4 * PASSES * SAMPLER_MB);
    // With the full collection every few dozen evaluations, no more than that many wait.
    expect(bounded).toBeLessThan(40 * SAMPLER_MB);
  }, 240_000);
});
