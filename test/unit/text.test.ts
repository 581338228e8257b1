import { describe, expect, it } from "vitest";
import { normaliseInput } from "../../src/text/normaliseInput.js";
import { capReply, sanitizeReply } from "../../src/text/sanitizeReply.js";
import { splitMessage } from "../../src/text/splitMessage.js";
import { stripBotMention } from "../../src/text/stripMentions.js";

describe("stripBotMention", () => {
  const bot = "123456789012345678";
  it("removes both mention forms wherever they are", () => {
    expect(stripBotMention(`<@${bot}> hello <@!${bot}> there`, bot)).toBe("hello there");
  });
  it("keeps other users' mentions", () => {
    expect(stripBotMention(`<@${bot}> say hi to <@999999999999999999>`, bot)).toBe(
      "say hi to <@999999999999999999>",
    );
  });
  it("leaves nothing from a bare mention", () => {
    expect(stripBotMention(`  <@${bot}>  `, bot)).toBe("");
  });
  it("keeps line breaks", () => {
    expect(stripBotMention(`<@${bot}> a\nb`, bot)).toBe("a\nb");
  });
});

describe("sanitizeReply", () => {
  it("removes chat-template control tokens", () => {
    expect(sanitizeReply("hi<|im_end|>\n<|im_start|>user\nmore<|endoftext|>")).toBe("hi\nuser\nmore");
  });
  it("removes think blocks, closed or not", () => {
    expect(sanitizeReply("<think>secret plan</think>Hello!")).toBe("Hello!");
    expect(sanitizeReply("Hi <think>never closed")).toBe("Hi");
  });
  it("makes mass mentions inert", () => {
    const text = sanitizeReply("hey @everyone and @here, also @Everyone");
    expect(text).not.toMatch(/@(everyone|here)/i);
    expect(text).toBe("hey @\u200beveryone and @\u200bhere, also @\u200bEveryone");
  });
  it("keeps ordinary text and code", () => {
    expect(sanitizeReply("  a < b && c > d  ")).toBe("a < b && c > d");
  });
});

describe("splitMessage", () => {
  it("returns short text as one chunk", () => {
    expect(splitMessage("hello")).toEqual(["hello"]);
  });

  it("returns nothing for blank text", () => {
    expect(splitMessage("  \n ")).toEqual([]);
  });

  it("splits on line breaks first, within the limit", () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i} ${"x".repeat(60)}`);
    const chunks = splitMessage(lines.join("\n"), 500);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(500);
      expect(chunk.startsWith("line ")).toBe(true);
    }
    expect(chunks.join("\n")).toBe(lines.join("\n"));
  });

  it("splits on spaces when a line is too long, never inside a word", () => {
    const words = Array.from({ length: 400 }, (_, i) => `word${i}`);
    const chunks = splitMessage(words.join(" "), 200);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(200);
    expect(chunks.join(" ").split(" ")).toEqual(words);
  });

  it("cuts a word with no spaces at the limit without splitting a surrogate pair", () => {
    const text = "😀".repeat(150);
    const chunks = splitMessage(text, 101);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(101);
      expect(chunk.isWellFormed()).toBe(true);
    }
    expect(chunks.join("")).toBe(text);
  });

  it("closes a cut code fence and reopens it with its language", () => {
    const code = Array.from({ length: 60 }, (_, i) => `const v${i} = ${i};`).join("\n");
    const text = `Here:\n\`\`\`ts\n${code}\n\`\`\`\nDone.`;
    const chunks = splitMessage(text, 300);
    expect(chunks.length).toBeGreaterThan(2);
    for (const [index, chunk] of chunks.entries()) {
      expect(chunk.length).toBeLessThanOrEqual(300);
      const fences = chunk.match(/^```/gm) ?? [];
      expect(fences.length % 2, `chunk ${index} has balanced fences`).toBe(0);
      if (index > 0 && index < chunks.length - 1) expect(chunk.startsWith("```ts\n")).toBe(true);
    }
    expect(chunks.at(-1)).toMatch(/Done\.$/);
  });

  it("keeps the default limit at Discord's 2000 characters", () => {
    const chunks = splitMessage("a ".repeat(3000));
    expect(chunks.length).toBe(4);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(2000);
  });
});

describe("normaliseInput", () => {
  it("names custom emojis, replaces mention ids, drops invisible characters", () => {
    expect(normaliseInput("<:pepe_cry:123456789012345678> <a:party:123456789012345678>")).toBe(
      ":pepe_cry: :party:",
    );
    expect(
      normaliseInput("hi <@123456789012345678> in <#223456789012345678> cc <@&323456789012345678>"),
    ).toBe("hi @user in #channel cc @role");
    expect(normaliseInput("\u200b\u200d\ufeff")).toBe("");
    expect(normaliseInput("שלום \u202eabc")).toBe("שלום abc");
  });

  it("repairs invalid surrogate pairs", () => {
    expect(normaliseInput("bad \ud800 pair")).toBe("bad \ufffd pair");
  });

  it("keeps emoji, code and right-to-left text", () => {
    expect(normaliseInput("😭😭")).toBe("😭😭");
    expect(normaliseInput("```js\nx()\n```")).toBe("```js\nx()\n```");
    expect(normaliseInput("مرحبا")).toBe("مرحبا");
  });
});

describe("capReply", () => {
  it("leaves short replies alone and cuts long ones at a word, marked", () => {
    expect(capReply("short", 100)).toBe("short");
    const capped = capReply("word ".repeat(100), 50);
    expect(capped.length).toBeLessThanOrEqual(50);
    expect(capped.endsWith("word…")).toBe(true);
  });
});
