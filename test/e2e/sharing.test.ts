import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/openStore.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const messagesPath = /^\/channels\/\d+\/messages$/;
const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const logTime = (line: Record<string, unknown> | undefined) => Number(line?.time ?? Number.NaN);

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
    harness.discord.sendMessage({
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
    // "chat turn done" is logged the moment generation ends (the last edits of the reply come after it).
    const [generated] = await harness.waitForLog("chat turn done", 1, 60_000);
    // Every reaction landed while the reply was still generating: none of them waited for it.
    const lastReaction = Math.max(...reactions.map((request) => request?.at ?? Number.POSITIVE_INFINITY));
    expect(lastReaction).toBeLessThan(logTime(generated));
    expect(generated).toMatchObject({ generatedTokens: 1500 });
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
    await harness.waitForLog("replied", 2, 60_000);
    const replied = harness.logs.find("replied");
    const firstDone = logTime(replied.find((line) => line.messageId === first));
    const secondDone = logTime(replied.find((line) => line.messageId === second));
    const startOf = (messageId: string) =>
      harness.discord
        .requestsMatching("POST", messagesPath)
        .find((post) => (body(post).message_reference as { message_id?: string })?.message_id === messageId)
        ?.at;
    // Each reply started streaming before the other one had finished.
    expect(startOf(second)).toBeLessThan(firstDone);
    expect(startOf(first)).toBeLessThan(secondDone);
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
      await harness.waitForLog("chat queued", 2);
      await harness.discord.waitForRequests("POST", messagesPath);
      const channelId = harness.discord.channelId;
      await harness.close();
      expect(harness.logs.find("interrupted turn kept")).toHaveLength(3);

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
