import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/openStore.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const messagesPath = /^\/channels\/\d+\/messages$/;
const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;

let h: BotHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("one model shared by everyone at once", () => {
  it("reacts to a burst while a long reply is still streaming", async () => {
    h = await startBotHarness({
      model: { favouredToken: " lorem" },
      channels: 3,
      env: { CHAT_MAX_TOKENS: "1500", LLM_SENTIMENT_SEQUENCES: "4" },
    });
    const harness = h;
    const [, second = harness.discord.channelId, third = harness.discord.channelId] =
      harness.discord.guilds[0]?.channelIds ?? [];
    const story = harness.discord.sendMessage({
      content: `<@${harness.discord.botUser.id}> tell me a story`,
      mentionBot: true,
    });
    // The reply has started streaming before the burst comes.
    await harness.discord.waitForRequests("POST", messagesPath);
    const burst = Array.from({ length: 8 }, (_, i) =>
      harness.discord.sendMessage({
        content: `ordinary message number ${i}, nothing special`,
        channelId: i % 2 === 0 ? second : third,
      }),
    );
    const reactions = await Promise.all(
      burst.map(async (id) => (await harness.discord.waitForRequests("PUT", reactionPath(id)))[0]),
    );
    const replied = await harness.outcomes.next("replied", { messageId: story }, 45_000);
    expect(replied).toMatchObject({ fromModel: true });
    // Every reaction landed while the reply was still generating: none of them waited for it. The burst cut
    // nothing short either: the model wrote all 1,500 tokens.
    const [generated] = harness.model.chatAnswers;
    const lastReaction = Math.max(...reactions.map((request) => request?.at ?? Number.POSITIVE_INFINITY));
    expect(lastReaction).toBeLessThan(generated?.at ?? 0);
    expect(generated?.completion.generatedTokens).toBe(1500);
    expect(harness.llm.schedulerStats.sharedPasses).toBeGreaterThan(0);
  });

  it("generates replies in two channels side by side", async () => {
    h = await startBotHarness({
      model: { favouredToken: " lorem" },
      env: { CHAT_MAX_TOKENS: "600", LLM_CHAT_SEQUENCES: "2" },
    });
    const harness = h;
    const botId = harness.discord.botUser.id;
    const first = harness.discord.sendMessage({ content: `<@${botId}> first`, mentionBot: true });
    const second = harness.discord.sendMessage({
      content: `<@${botId}> second`,
      mentionBot: true,
      channelId: harness.discord.secondChannelId,
    });
    await Promise.all(
      [first, second].map((messageId) => harness.outcomes.next("replied", { messageId }, 45_000)),
    );
    // When the model finished each one: the generation's own end, before the bot's last edits and its store.
    const doneOf = (text: string) =>
      harness.model.chatAnswers.find((answer) => answer.turns.at(-1)?.text.endsWith(`: ${text}`))?.at ??
      Number.NaN;
    const startOf = (messageId: string) =>
      harness.discord
        .requestsMatching("POST", messagesPath)
        .find((post) => (body(post).message_reference as { message_id?: string })?.message_id === messageId)
        ?.at;
    // Each reply started streaming before the other one had finished generating.
    expect(startOf(second)).toBeLessThan(doneOf("first"));
    expect(startOf(first)).toBeLessThan(doneOf("second"));
  });

  it("on shutdown, keeps the interrupted turn and the queued mentions' turns", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dataDir = await mkdtemp(join(tmpdir(), "moodbot-shutdown-"));
    try {
      const harness = await startBotHarness({
        model: { favouredToken: " lorem" },
        dataDir,
        env: { CHAT_MAX_TOKENS: "1500", CHAT_CHANNEL_QUEUE: "2" },
      });
      const botId = harness.discord.botUser.id;
      for (const question of ["question zero", "question one", "question two"]) {
        harness.discord.sendMessage({ content: `<@${botId}> ${question}`, mentionBot: true });
      }
      const channelId = harness.discord.channelId;
      await harness.outcomes.waitFor("queued", { channelId }, { count: 2 });
      await harness.discord.waitForRequests("POST", messagesPath);
      await harness.close();
      // The shutdown stored each of the three turns as interrupted: the one generating and the two queued.
      expect(harness.outcomes.all("stored", { channelId, interrupted: true })).toHaveLength(3);

      const store = await openStore(`sqlite://${join(dataDir, "bot.sqlite")}`, harness.logger);
      const turns = (await store.turns.read(channelId)) as Array<{ role: string; text: string }>;
      await store.close();
      expect(turns.map((turn) => turn.role)).toEqual(["user", "assistant", "user", "user"]);
      expect(turns.filter((turn) => turn.role === "user").map((turn) => turn.text)).toEqual([
        "question zero",
        "question one",
        "question two",
      ]);
      expect(turns[1]?.text).toMatch(/lorem/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
