import { describe, expect, it } from "vitest";
import { emojiForLabel, parseMoodEmojis } from "../../src/platform/sentimentLabels.js";

describe("mood emojis", () => {
  it("maps each label to its emoji, in any order, with spaces around", () => {
    const map = parseMoodEmojis(" neutral = 😐 , positive=🎉,negative=💢 ");
    expect(emojiForLabel(map, "positive")).toBe("🎉");
    expect(emojiForLabel(map, "negative")).toBe("💢");
    expect(emojiForLabel(map, "neutral")).toBe("😐");
  });

  it("treats an empty emoji as no reaction", () => {
    const map = parseMoodEmojis("positive=😄,negative=😢,neutral=");
    expect(emojiForLabel(map, "neutral")).toBeUndefined();
    expect(emojiForLabel(map, "positive")).toBe("😄");
  });

  it("accepts custom emoji tags", () => {
    const map = parseMoodEmojis(
      "positive=<:yay:123456789012345678>,negative=<a:cry:223456789012345678>,neutral=😐",
    );
    expect(emojiForLabel(map, "negative")).toBe("<a:cry:223456789012345678>");
  });

  it.each([
    ["positive😄,negative=,neutral=", 'has no "="'],
    ["joy=😄,negative=,neutral=", "not a label"],
    ["positive=😄", "negative, neutral are missing"],
    ["positive=😄,negative=a b,neutral=", "contains a space"],
  ])("rejects %j", (spec, message) => {
    expect(() => parseMoodEmojis(spec)).toThrow(message);
  });
});
