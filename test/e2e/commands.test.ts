import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helpText } from "../../commands/help.js";
import { commands } from "../../commands/index.js";
import { ON_THIS_MACHINE, WORDING } from "../../src/wording/wording.js";
import { FakeDiscord, type RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const EPHEMERAL = 64;
const callbackOf = (token: string) => new RegExp(`^/interactions/\\d+/${token}/callback$`);
const originalOf = (token: string) => new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`);

let h: BotHarness;
/** /sentiment "what a day", run in a channel by a user with this locale. */
const sentimentIn = (channelId: string, locale: string) =>
  h.discord.sendSlashCommand({
    name: "sentiment",
    channelId,
    options: [{ name: "text", type: 3, value: "what a day" }],
    locale,
  });
beforeAll(async () => {
  h = await startBotHarness({
    model: { favouredToken: "positive", seed: 3 },
    envFromDiscord: () => ({ CHAT_FORGET_ROLES: FakeDiscord.HELPER_ROLE_ID }),
  });
});
afterAll(async () => h?.close());

describe("/sentiment", () => {
  it("answers privately with private:true", async () => {
    const { token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [
        { name: "text", type: 3, value: "what a day" },
        { name: "private", type: 5, value: true },
      ],
    });
    const [callback] = await h.discord.waitForRequests("POST", callbackOf(token));
    expect(body(callback)).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toMatch(/\*\*positive\*\*/);
  });

  it("speaks Chinese to a zh-CN user", async () => {
    const { token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "太好了" }],
      locale: "zh-CN",
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toMatch(
      /^😄 \*\*正面\*\* （置信度 \d+%）\n-# 正面 \d+% · 负面 \d+% · 中性 \d+%$/,
    );
  });

  it("answers with the channel's emoji and language from /settings, over the asker's locale", async () => {
    const channelId = h.discord.secondChannelId;
    await h.app.settings.set("channel", channelId, "emoji-positive", "🌞");
    await h.app.settings.set("channel", channelId, "language", "zh");
    try {
      const { token } = sentimentIn(channelId, "en-US");
      const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
      expect(body(edit).content).toMatch(/^🌞 \*\*正面\*\* （置信度 \d+%）/);

      await h.app.settings.set("channel", channelId, "emoji-positive", "none");
      const second = sentimentIn(channelId, "en-US");
      const [plain] = await h.discord.waitForRequests("PATCH", originalOf(second.token));
      expect(body(plain).content).toMatch(/^\*\*正面\*\*/);
    } finally {
      await h.app.settings.reset("channel", channelId, "emoji-positive");
      await h.app.settings.reset("channel", channelId, "language");
    }
  });
});

describe("a command that fails", () => {
  it("says so in the channel's language, like every other answer", async () => {
    const channelId = h.discord.secondChannelId;
    await h.app.settings.set("channel", channelId, "language", "zh");
    let failures = 0;
    const restore = h.discord.override((request) =>
      request.method === "PATCH" && request.path.endsWith("/messages/@original") && failures++ === 0
        ? { status: 400, body: { message: "Invalid Form Body", code: 50035 } }
        : undefined,
    );
    try {
      const { token } = sentimentIn(channelId, "en-US");
      // Discord refused the answer's edit; the bot tells the asker in a second one.
      const edits = await h.discord.waitForRequests("PATCH", originalOf(token), 2);
      expect(body(edits.at(-1)).content).toBe(WORDING.zh.commandError);
    } finally {
      restore();
      await h.app.settings.reset("channel", channelId, "language");
    }
  });
});

describe("Analyze mood (message context menu)", () => {
  it("reads the right-clicked message and answers only to the asker", async () => {
    const { token } = h.discord.sendMessageCommand({
      name: "Analyze mood",
      target: { id: h.discord.snowflake(), content: "best raid we've ever had" },
    });
    const [callback] = await h.discord.waitForRequests("POST", callbackOf(token));
    expect(body(callback)).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toMatch(/^😄 \*\*positive\*\* \(confidence \d+%\)/);
    expect(body(edit).allowed_mentions).toEqual({ parse: [] });
  });

  it("says so when the message has no text", async () => {
    const { token } = h.discord.sendMessageCommand({
      name: "Analyze mood",
      target: { id: h.discord.snowflake(), content: "" },
      locale: "zh-CN",
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toBe(WORDING.zh.noTextInMessage);
  });
});

describe("/forget", () => {
  const seedHistory = async () => {
    await h.store.turns.append(
      h.discord.channelId,
      [{ role: "user", text: "remember me", author: "alice", at: 1 }],
      { keep: 10, ttlMs: 60_000 },
    );
  };

  it("refuses a member without Manage Messages or an allowed role, and keeps the history", async () => {
    await seedHistory();
    const { token } = h.discord.sendSlashCommand({ name: "forget", permissions: "0" });
    const [callback] = await h.discord.waitForRequests("POST", callbackOf(token));
    expect(body(callback)).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toBe(WORDING.en.forgetDenied);
    expect(await h.store.turns.read(h.discord.channelId)).toEqual([
      expect.objectContaining({ role: "user", text: "remember me" }),
    ]);
  });

  it("clears the channel's history for a member with Manage Messages", async () => {
    await seedHistory();
    const { token } = h.discord.sendSlashCommand({ name: "forget" });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(body(edit).content).toBe(WORDING.en.forgotten);
    expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
    await h.outcomes.next("deleted", { scope: "channel", id: h.discord.channelId });
  });

  it("accepts a role named in CHAT_FORGET_ROLES", async () => {
    await seedHistory();
    const { token } = h.discord.sendSlashCommand({
      name: "forget",
      permissions: "0",
      roles: ["500000000000000001"],
    });
    await h.discord.waitForRequests("PATCH", originalOf(token));
    expect(await h.store.turns.read(h.discord.channelId)).toBeUndefined();
  });
});

describe("/help", () => {
  it("lists what the bot does and every slash command, privately", async () => {
    const { token } = h.discord.sendSlashCommand({ name: "help" });
    const [callback] = await h.discord.waitForRequests("POST", callbackOf(token));
    expect(body(callback)).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    const content = String(body(edit).content);
    expect(body(edit).allowed_mentions).toEqual({ parse: [] });
    for (const name of ["/sentiment", "/forget", "/help"]) expect(content).toContain(name);
    expect(content).toContain("Analyze mood");
  });

  it("is written from the commands' own data, in Chinese for zh-CN", () => {
    const text = helpText(
      commands.map((command) => command.data),
      "zh",
      ON_THIS_MACHINE,
    );
    expect(text).toContain("读出一段文字的情绪");
    expect(text).toContain("分析情绪");
    expect(text).not.toContain("`/Analyze mood`");
  });
});

describe("/mood", () => {
  it("counts this channel's moods as reactions happen and attaches a PNG chart", async () => {
    const ids = ["great", "love it", "fantastic"].map((content) => h.discord.sendMessage({ content }));
    for (const id of ids) {
      await h.outcomes.next("reacted", { messageId: id });
      expect(h.discord.acceptedMatching("PUT", new RegExp(`/messages/${id}/reactions/`))).toHaveLength(1);
    }
    const { token } = h.discord.sendSlashCommand({
      name: "mood",
      options: [{ name: "period", type: 3, value: "7d" }],
    });
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
    const content = String(body(edit).content);
    expect(content).toMatch(
      /^\*\*Mood over the last 7 days\*\*: 😄 positive (\d+) · 😢 negative 0 · 😐 neutral 0$/,
    );
    expect(Number(content.match(/positive (\d+)/)?.[1])).toBeGreaterThanOrEqual(3);
    expect(body(edit).files).toEqual(["mood.png"]);
  });
});
