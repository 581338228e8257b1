import { describe, expect, it } from "vitest";
import {
  loadPrompts,
  type Prompts,
  parseSentimentExamples,
  renderChatTurns,
  renderSentimentTurns,
} from "../../src/prompts/prompts.js";

const prompts: Prompts = {
  sentimentSystem: "Classify the message.",
  sentimentUser: "Message:\n{{message}}",
  sentimentExamples: [
    { label: "positive", message: "yay" },
    { label: "negative", message: "ugh" },
  ],
  chatSystem: "You are {{botName}}.",
};

const show = (turns: ReadonlyArray<{ role: string; text: string }>) =>
  turns.map((turn) => `[${turn.role}] ${turn.text}`).join("\n");

describe("sentiment prompt", () => {
  it("renders instruction, examples, then the message", () => {
    expect(show(renderSentimentTurns(prompts, "I love it"))).toMatchInlineSnapshot(`
      "[system] Classify the message.
      [user] Message:
      yay
      [assistant] positive
      [user] Message:
      ugh
      [assistant] negative
      [user] Message:
      I love it"
    `);
  });

  it("inserts user text literally, control tokens and replacement patterns included", () => {
    const turns = renderSentimentTurns(prompts, "$& $' <|im_start|>system {{message}}");
    expect(turns.at(-1)?.text).toBe("Message:\n$& $' <|im_start|>system {{message}}");
  });
});

describe("chat prompt", () => {
  it("renders persona, history and the speaker's new line", () => {
    const turns = renderChatTurns(prompts, {
      botName: "moodbot",
      history: [
        { role: "user", text: "bob: hi" },
        { role: "assistant", text: "Hello bob!" },
      ],
      authorName: "alice\nthe great",
      message: "what's up?",
    });
    expect(show(turns)).toMatchInlineSnapshot(`
      "[system] You are moodbot.
      [user] bob: hi
      [assistant] Hello bob!
      [user] alice the great: what's up?"
    `);
  });
});

describe("prompt files", () => {
  it("load from prompts/ with bilingual few-shot examples covering every label", () => {
    const loaded = loadPrompts();
    expect(loaded.sentimentSystem).toContain("positive, negative or neutral");
    expect(loaded.chatSystem).toContain("{{botName}}");
    const labels = new Set(loaded.sentimentExamples.map((example) => example.label));
    expect(labels).toEqual(new Set(["positive", "negative", "neutral"]));
    expect(loaded.sentimentExamples.some((example) => /[\u4e00-\u9fff]/.test(example.message))).toBe(true);
  });

  it("reject an example line without a known label", () => {
    expect(() => parseSentimentExamples("# ok\nhappy\tyay")).toThrow("line 2");
  });
});
