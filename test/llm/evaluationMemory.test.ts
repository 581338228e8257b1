import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { NODE_RUNTIME_FLAGS } from "../../src/entry/runtimeFlags.js";
import { EVALUATIONS_PER_COLLECTION } from "../../src/llm/inProcess/samplerCollector.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";
import { tinyModel } from "../../testkit/models.js";

const run = promisify(execFile);
const PASSES = 200;
/** What each evaluation's sampler holds until V8 collects it: one 12-byte entry per vocabulary token. */
const QWEN_VOCABULARY = 151_936;
const SAMPLER_MB = (QWEN_VOCABULARY * 12) / 1024 / 1024;
/** The evaluations of the warm-up, whose samplers may be freed during the run and lower the measured growth. */
const WARM_UP = 10;
/**
 * A young generation too large for the run's garbage to fill: V8 then has no reason to collect at all, and the
 * samplers show what they hold. Any collection V8 runs anyway is counted, and the expectation follows it.
 */
const NO_COLLECTION = ["--max-semi-space-size=64"];
/** Anonymous memory is read from /proc, so the measure needs Linux; said in one line where it is missing. */
const NEEDS = "/proc/self/status with an RssAnon line (Linux) is needed to measure anonymous memory";

/** What the child measured, and the collections V8 ran during its run (test/support/evaluationMemory.ts). */
interface Run {
  readonly growthMb: number;
  readonly collections: number;
  readonly fullCollections: number;
  readonly mostBetweenFullCollections: number;
  readonly finishedSinceLastCollection: number;
}

async function measure(flags: readonly string[], width = 1): Promise<Run> {
  if (!existsSync("/proc/self/status") || !/RssAnon:/.test(readFileSync("/proc/self/status", "utf8")))
    throw new Error(NEEDS);
  const model = await tinyModel({ vocabularySize: QWEN_VOCABULARY });
  const script = join(REPO_ROOT, "test", "support", "evaluationMemory.ts");
  const { stdout } = await run(
    process.execPath,
    [...flags, "--import", import.meta.resolve("tsx"), script, model, String(PASSES), String(width)],
    { cwd: REPO_ROOT, timeout: 120_000 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Run;
}

/** With the flags, the model's owner runs a full collection every EVALUATIONS_PER_COLLECTION evaluations. */
function expectCollectedEvery(bounded: Run, width: number): void {
  expect(bounded.fullCollections).toBeGreaterThanOrEqual(Math.floor(PASSES / EVALUATIONS_PER_COLLECTION));
  expect(bounded.mostBetweenFullCollections).toBeLessThanOrEqual(EVALUATIONS_PER_COLLECTION + width);
  // So no more samplers than that wait at any time, whatever else V8 does.
  expect(bounded.growthMb).toBeLessThan((EVALUATIONS_PER_COLLECTION + width + 8) * SAMPLER_MB);
}

/** A sampler not yet collected holds its memory: every evaluation since V8's last collection shows in the growth. */
function expectHeldUntilCollected(held: Run): void {
  const waiting = held.finishedSinceLastCollection - WARM_UP;
  expect(held.growthMb, JSON.stringify(held)).toBeGreaterThan(0.7 * waiting * SAMPLER_MB);
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

  it(`stays bounded over ${PASSES} sentiment passes with a 152k vocabulary, where nothing collects the samplers it piles up`, async () => {
    const [bounded, held] = [await measure(NODE_RUNTIME_FLAGS), await measure(NO_COLLECTION)];
    expectCollectedEvery(bounded, 1);
    expectHeldUntilCollected(held);
    // Not a vacuous bound: what the flags keep away is many times what they let wait.
    expect(held.growthMb).toBeGreaterThan(3 * bounded.growthMb);
  }, 240_000);

  it("stays bounded when bursts of classifications share passes, by the owner's full collections", async () => {
    const [bounded, held] = [await measure(NODE_RUNTIME_FLAGS, 2), await measure(NO_COLLECTION, 2)];
    expectCollectedEvery(bounded, 2);
    expectHeldUntilCollected(held);
    expect(held.growthMb).toBeGreaterThan(3 * bounded.growthMb);
  }, 240_000);
});
