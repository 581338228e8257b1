import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadPrompts, renderChatTurns, renderSentimentTurns } from "../../src/prompts/prompts.js";
import { normaliseInput } from "../../src/text/normaliseInput.js";
import { capReply, sanitizeReply } from "../../src/text/sanitizeReply.js";
import { splitMessage } from "../../src/text/splitMessage.js";
import { stripBotMention } from "../../src/text/stripMentions.js";

/** Cases per property; the suite runs 8 properties, 4,000 cases in all. */
const RUNS = 500;
const options = { numRuns: RUNS };

/** Text with the characters that break naive code: fences, newlines, mentions, control tokens, emoji, surrogates. */
const nastyText = fc
  .array(
    fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 30 }),
      fc.constantFrom(
        "```",
        "```ts\n",
        "\n",
        " ",
        "@everyone",
        "@here",
        "<|im_start|>",
        "<|im_end|>",
        "<think>",
        "</think>",
        "<@123456789012345678>",
        "😀",
        "\ud800",
        "\u200b",
        "\u202e",
        "$&",
        "{{message}}",
      ),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(""));

const prompts = loadPrompts();

describe("text pipeline properties", () => {
  it("splitMessage: every chunk fits, nothing visible is lost, cut fences are closed", () => {
    fc.assert(
      fc.property(nastyText, fc.integer({ min: 60, max: 400 }), (text, limit) => {
        const long = text.repeat(1 + Math.floor(limit / Math.max(1, text.length)));
        const chunks = splitMessage(long, limit);
        for (const [index, chunk] of chunks.entries()) {
          expect(chunk.length).toBeLessThanOrEqual(limit);
          expect(chunk.trim()).not.toBe("");
          // A fence the splitter cut is closed in its chunk; only the text's own last fence may stay open.
          if (index < chunks.length - 1) expect((chunk.match(/^\s*```/gm) ?? []).length % 2).toBe(0);
        }
        // The splitter only adds fence lines ("```lang" to reopen, "```" to close) and drops whitespace at cuts.
        const visible = (s: string) =>
          s
            .split("\n")
            .filter((line) => !/^\s*```[\w+#.-]*\s*$/.test(line))
            .join("")
            .replace(/\s/g, "");
        expect(visible(chunks.join("\n"))).toBe(visible(long));
      }),
      options,
    );
  });

  it("sanitizeReply: no mass mention or control token survives, and it is idempotent", () => {
    fc.assert(
      fc.property(nastyText, (text) => {
        const clean = sanitizeReply(text);
        expect(clean).not.toMatch(/@(everyone|here)\b/i);
        expect(clean).not.toMatch(/<\|[a-z_]+\|>/i);
        expect(clean).not.toMatch(/<think>/i);
        expect(sanitizeReply(clean)).toBe(clean);
      }),
      options,
    );
  });

  it("capReply: never longer than the cap, never a lone surrogate at the cut", () => {
    fc.assert(
      fc.property(nastyText, fc.integer({ min: 10, max: 200 }), (text, max) => {
        const capped = capReply(text.repeat(10), max);
        expect(capped.length).toBeLessThanOrEqual(max);
        expect(capped.isWellFormed() || !text.isWellFormed()).toBe(true);
      }),
      options,
    );
  });

  it("stripBotMention: removes every mention of the bot and nothing else of substance", () => {
    const bot = "123456789012345678";
    fc.assert(
      fc.property(nastyText, (text) => {
        const stripped = stripBotMention(`<@${bot}> ${text} <@!${bot}>`, bot);
        expect(stripped).not.toContain(`<@${bot}>`);
        expect(stripped).not.toContain(`<@!${bot}>`);
        const words = (s: string) => s.replaceAll(`<@${bot}>`, "").replace(/\s+/g, "");
        expect(words(stripped)).toBe(words(text));
      }),
      options,
    );
  });

  it("normaliseInput: well-formed, no invisible controls, no raw ids", () => {
    fc.assert(
      fc.property(nastyText, (text) => {
        const clean = normaliseInput(text);
        expect(clean.isWellFormed()).toBe(true);
        expect(clean).not.toMatch(/[\u200b\u202e\ufeff]/);
        expect(clean).not.toMatch(/<@!?\d{17,20}>/);
        expect(normaliseInput(clean)).toBe(clean);
      }),
      options,
    );
  });

  it("renderSentimentTurns: the message is the last turn, verbatim, and nothing else changes", () => {
    const reference = renderSentimentTurns(prompts, "x");
    fc.assert(
      fc.property(nastyText, (text) => {
        const turns = renderSentimentTurns(prompts, text);
        expect(turns.slice(0, -1)).toEqual(reference.slice(0, -1));
        expect(turns.at(-1)?.text).toBe(prompts.sentimentUser.replace("{{message}}", () => text));
      }),
      options,
    );
  });

  it("renderChatTurns: user text and names stay inside their own turn", () => {
    fc.assert(
      fc.property(nastyText, nastyText, (name, message) => {
        const turns = renderChatTurns(prompts, {
          botName: "moodbot",
          history: [],
          authorName: name,
          message,
        });
        expect(turns).toHaveLength(2);
        expect(turns[0]?.role).toBe("system");
        expect(turns[1]?.role).toBe("user");
        expect(turns[1]?.text.endsWith(`: ${message}`)).toBe(true);
        expect(turns[1]?.text.split(": ")[0]).not.toContain("\n");
      }),
      options,
    );
  });

  it("the whole reply path: sanitised, capped and split output is always sendable", () => {
    fc.assert(
      fc.property(nastyText, (text) => {
        for (const chunk of splitMessage(capReply(sanitizeReply(text.repeat(60))))) {
          expect(chunk.length).toBeGreaterThan(0);
          expect(chunk.length).toBeLessThanOrEqual(2000);
          expect(chunk).not.toMatch(/@(everyone|here)\b/i);
        }
      }),
      options,
    );
  });
});
