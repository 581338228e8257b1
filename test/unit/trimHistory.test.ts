import { describe, expect, it } from "vitest";
import { TURN_OVERHEAD_TOKENS, trimHistory } from "../../src/prompts/prompts.js";
import type { HistoryTurn } from "../../src/store/history.js";

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;
const turn = (role: "user" | "assistant", text: string): HistoryTurn => ({ role, text, at: 0 });

describe("trimHistory", () => {
  const turns = [
    turn("user", "one two"),
    turn("assistant", "three"),
    turn("user", "four five six"),
    turn("assistant", "seven"),
  ];

  it("keeps the newest turns within the turn count", async () => {
    expect(
      (await trimHistory(turns, { maxTurns: 2, maxTokens: 1_000, countTokens: words })).map((t) => t.text),
    ).toEqual(["four five six", "seven"]);
  });

  it("keeps the newest turns within the token budget, counting each turn's overhead", async () => {
    const budget = words("four five six") + words("seven") + 2 * TURN_OVERHEAD_TOKENS;
    expect(await trimHistory(turns, { maxTurns: 10, maxTokens: budget, countTokens: words })).toHaveLength(2);
    expect(
      await trimHistory(turns, { maxTurns: 10, maxTokens: budget - 1, countTokens: words }),
    ).toHaveLength(0);
  });

  it("never starts on an assistant turn", async () => {
    const kept = await trimHistory(turns, { maxTurns: 3, maxTokens: 1_000, countTokens: words });
    expect(kept.map((t) => t.text)).toEqual(["four five six", "seven"]);
  });

  it("returns nothing when even the newest turn does not fit", async () => {
    expect(await trimHistory(turns, { maxTurns: 10, maxTokens: 3, countTokens: words })).toEqual([]);
  });

  it("counts with a tokenizer that answers later (a model server), and only the newest turns", async () => {
    const counted: string[] = [];
    const remote = async (text: string) => {
      counted.push(text);
      await Promise.resolve();
      return words(text);
    };
    const budget = words("four five six") + words("seven") + 2 * TURN_OVERHEAD_TOKENS;
    const kept = await trimHistory(turns, { maxTurns: 2, maxTokens: budget, countTokens: remote });
    expect(kept.map((t) => t.text)).toEqual(["four five six", "seven"]);
    expect(counted.sort()).toEqual(["four five six", "seven"]);
  });
});
