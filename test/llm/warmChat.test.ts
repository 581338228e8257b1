import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/llm/inProcess/model.js";
import type { SentimentResult } from "../../src/llm/llm.js";
import { ResultCachedLlm } from "../../src/llm/resultCachedLlm.js";
import { normaliseForCache, SentimentCache } from "../../src/llm/sentimentCache.js";
import { type ChatTurn, loadPrompts, renderChatTurns } from "../../src/prompts/prompts.js";
import { testModelOptions, tinyModel } from "../../testkit/models.js";

const prompts = loadPrompts();

/** The model as the bot opens it: the result caches in front of the scheduled runtime. */
async function load(chatSequences: number, cacheSize = 100) {
  const options = testModelOptions({
    path: await tinyModel({ favouredToken: " lorem" }),
    chatSequences,
    // Smaller than a cold prompt, so history is evaluated over several passes as in production.
    batchSize: 64,
  });
  return new ResultCachedLlm(await loadModel(options), { logger: options.logger, cacheSize });
}

/** Each channel has its own conversation; a follow-up appends the last reply and a new message. */
function conversation(topic: string) {
  const history: ChatTurn[] = [
    { role: "user", text: `alice: let us talk about ${topic} for a while, ${topic} are great` },
    { role: "assistant", text: `Sure, ${topic} are wonderful.` },
  ];
  return {
    turns: (message: string) =>
      renderChatTurns(prompts, { botName: "moodbot", history, authorName: "alice", message }),
    remember: (message: string, reply: string) => {
      history.push({ role: "user", text: `alice: ${message}` }, { role: "assistant", text: reply });
    },
  };
}

async function followUpCost(chatSequences: number): Promise<{ cold: number; warm: number }> {
  const llm = await load(chatSequences);
  const cats = conversation("cats");
  const dogs = conversation("dogs");
  const options = { maxTokens: 4, temperature: 0 };
  const first = await llm.generateChat(cats.turns("tell me more"), { ...options, channelKey: "cats" });
  cats.remember("tell me more", first.text);
  await llm.generateChat(dogs.turns("and dogs?"), { ...options, channelKey: "dogs" });
  const followUp = await llm.generateChat(cats.turns("go on"), { ...options, channelKey: "cats" });
  await llm.close();
  return { cold: first.evaluatedPromptTokens, warm: followUp.evaluatedPromptTokens };
}

describe("warm chat sequences", () => {
  it("evaluate only the new turns of a channel's follow-up, even after another channel spoke", async () => {
    const { cold, warm } = await followUpCost(2);
    expect(cold).toBeGreaterThan(100);
    expect(warm).toBeLessThan(30);
  });

  it("with one sequence, another channel's turn evicts the state and the follow-up pays again", async () => {
    const kept = await followUpCost(2);
    const evicted = await followUpCost(1);
    // Only the shared system prompt survives the other channel's turn; the whole history is evaluated again.
    expect(evicted.warm).toBeGreaterThan(3 * kept.warm);
  });
});

describe("sentiment result cache", () => {
  const result = (label: "positive" | "negative"): SentimentResult => ({
    label,
    confidence: 1,
    probabilities: {
      positive: label === "positive" ? 1 : 0,
      negative: label === "negative" ? 1 : 0,
      neutral: 0,
    },
    method: "logits",
    evaluatedTokens: 3,
    truncated: false,
  });

  it("normalises whitespace, case and full-width forms", () => {
    expect(normaliseForCache("  LOL\n\t lol ")).toBe("lol lol");
    expect(normaliseForCache("ＯＫ")).toBe("ok");
    expect(normaliseForCache("哈哈")).toBe("哈哈");
  });

  it("is a bounded LRU that counts hits and misses", () => {
    const cache = new SentimentCache(2);
    cache.set("gg", result("positive"));
    cache.set("ugh", result("negative"));
    expect(cache.get("GG ")?.label).toBe("positive");
    cache.set("ok", result("positive"));
    expect(cache.get("ugh")).toBeUndefined();
    expect(cache.get("gg")).toBeDefined();
    expect(cache.size).toBe(2);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 1 });
  });

  it("skips long texts and can be turned off", () => {
    const cache = new SentimentCache(10);
    cache.set("x".repeat(500), result("positive"));
    expect(cache.size).toBe(0);
    const off = new SentimentCache(0);
    off.set("ok", result("positive"));
    expect(off.get("ok")).toBeUndefined();
  });

  it("answers a repeated message without model work", async () => {
    const llm = await load(1);
    const first = await llm.classifySentiment("lol");
    const again = await llm.classifySentiment("  LOL ");
    expect(again.label).toBe(first.label);
    expect(again.probabilities).toEqual(first.probabilities);
    expect(again.cached).toBe(true);
    expect(again.evaluatedTokens).toBe(0);
    expect(llm.schedulerStats.completed).toBe(1);
    expect(llm.cacheStats).toMatchObject({ hits: 1, misses: 1 });
    await llm.close();
  });
});
