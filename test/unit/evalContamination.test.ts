import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jaccard, normaliseForComparison, overlap, promptExamples } from "../../eval/contamination.js";
import { loadDataset, loadToxicityDataset } from "../../eval/dataset.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/*
 * The eval is only honest if no dev or held-out line is something the prompts already show the model, and if no
 * translation of a held-out line is in dev.
 */

// Both labelled sets: sentiment's and moderation's.
const all = [
  ...loadDataset("all"),
  ...loadToxicityDataset("all").map((line) => ({ ...line, id: -line.id, pair: `t${line.pair}` })),
];

describe("the eval set against the prompts", () => {
  it("has no line equal to, containing, inside, or nearly equal to a few-shot example in prompts/", () => {
    const examples = promptExamples(join(REPO_ROOT, "prompts"));
    expect(examples.length).toBeGreaterThan(8);
    const leaks = all.flatMap((line) =>
      examples.flatMap((example) => {
        const kind = overlap(line.text, example.text);
        return kind ? [`${line.id} (${kind} of ${example.source}): ${line.text}`] : [];
      }),
    );
    expect(leaks).toEqual([]);
  });

  it("flags the copies it is there to catch", () => {
    expect(overlap("What time does the event start?", "what time does the event start?")).toBe("equal");
    expect(
      overlap(
        "this update is actually amazing, thank you devs",
        "this update is amazing, thank you so much!! 🎉",
      ),
    ).toBe("near copy");
    expect(
      overlap(
        "my build fails and nobody can tell me why",
        "ugh my build broke again and nobody can tell me why",
      ),
    ).toBe("near copy");
    expect(
      overlap(
        "lol ok what time does the event start? asking for a friend",
        "what time does the event start?",
      ),
    ).toBe("contains");
    expect(overlap("我明天下午三点上线", "我明天下午三点上线")).toBe("equal");
    // Short words inside longer ones are no leak, and unrelated lines share nothing.
    expect(overlap("ok", "my build broke")).toBeUndefined();
    expect(
      overlap("the raid resets on tuesday", "this update is amazing, thank you so much!!"),
    ).toBeUndefined();
  });

  it("computes 5-gram Jaccard on the normalised wording", () => {
    expect(normaliseForComparison("  Hello,   WORLD!! 🎉 ")).toBe("hello world");
    expect(jaccard("abcdef", "abcdef")).toBe(1);
    // "abcdef" has the 5-grams abcde, bcdef; "abcdeg" has abcde, bcdeg: one shared of three.
    expect(jaccard("abcdef", "abcdeg")).toBeCloseTo(1 / 3, 10);
    expect(jaccard("abcd", "abcd")).toBe(0);
  });
});

describe("the split", () => {
  it("keeps every pair of translations on one side", () => {
    const sides = new Map<string, Set<string>>();
    for (const line of all) sides.set(line.pair, (sides.get(line.pair) ?? new Set()).add(line.split));
    const straddling = [...sides].filter(([, splits]) => splits.size > 1).map(([pair]) => pair);
    expect(straddling).toEqual([]);
    // Pairs are real: most Chinese lines have an English partner.
    const paired = all.filter((line) =>
      all.some((other) => other.pair === line.pair && other.lang !== line.lang),
    );
    expect(paired.length).toBeGreaterThan(200);
  });
});
