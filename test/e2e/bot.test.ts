import { PermissionFlagsBits } from "discord.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WORDING } from "../../src/wording.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const emojiOf = (request: RecordedRequest | undefined) =>
  decodeURIComponent(request?.path.match(/reactions\/([^/]+)\/@me$/)?.[1] ?? "");
const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;

/** Waits until the bot has reacted to a later human message: proof it has processed everything before it. */
async function settle(h: BotHarness): Promise<void> {
  const id = h.discord.sendMessage({ content: "a control message after the others" });
  await h.discord.waitForRequests("PUT", reactionPath(id));
}

describe("mood reactions", () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await startBotHarness({ model: { favouredToken: "negative" } });
  });
  afterAll(async () => h?.close());

  it("logs in through GET /gateway/bot and identifies with the Message Content intent", () => {
    expect(h.discord.requestsMatching("GET", /^\/gateway\/bot$/)).toHaveLength(1);
    const identify = h.discord.identifies[0] as { intents: number; token: string };
    const MESSAGE_CONTENT = 1 << 15;
    expect(identify.intents & MESSAGE_CONTENT).toBe(MESSAGE_CONTENT);
    expect(identify.token).toBe("test-token.abc.def");
  });

  it("gives a human's message exactly one reaction, with the emoji of its label", async () => {
    const id = h.discord.sendMessage({ content: "this is the worst day ever" });
    const [put] = await h.discord.waitForRequests("PUT", reactionPath(id));
    expect(emojiOf(put)).toBe("😢");
    expect(put?.authorization).toBe("Bot test-token.abc.def");
    await settle(h);
    expect(h.discord.acceptedMatching("PUT", reactionPath(id))).toHaveLength(1);
  });

  it("ignores bots, webhooks, itself, system messages, direct messages and empty text", async () => {
    const ignored = [
      h.discord.sendMessage({
        content: "beep",
        author: { id: "200000000000000001", username: "otherbot", bot: true },
      }),
      h.discord.sendMessage({ content: "hook", webhookId: "300000000000000001" }),
      h.discord.sendMessage({ content: "me", author: h.discord.botUser }),
      h.discord.sendMessage({ content: "", type: 7 }),
      h.discord.sendMessage({ content: "dm", guildId: null }),
      h.discord.sendMessage({ content: "   " }),
      h.discord.sendMessage({
        content: "",
        attachments: [{ id: "1", filename: "a.png", size: 1, url: "x", proxy_url: "x" }],
      }),
    ];
    await settle(h);
    for (const id of ignored) {
      expect(h.discord.requests.filter((r) => r.path.includes(id))).toEqual([]);
    }
  });

  it("never sends text for a plain message", async () => {
    expect(h.discord.requestsMatching("POST", /\/messages$/)).toEqual([]);
  });
});

describe("mood emoji settings", () => {
  let h: BotHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("uses the emoji MOOD_EMOJIS maps the label to", async () => {
    h = await startBotHarness({
      model: { favouredToken: "positive" },
      env: { MOOD_EMOJIS: "positive=🎉,negative=💢,neutral=🫥" },
    });
    const id = h.discord.sendMessage({ content: "we won the tournament!" });
    const [put] = await h.discord.waitForRequests("PUT", reactionPath(id));
    expect(emojiOf(put)).toBe("🎉");
  });

  it("does not react when the label's emoji is empty, and says so in the log", async () => {
    h = await startBotHarness({
      model: { favouredToken: "negative" },
      env: { MOOD_EMOJIS: "positive=😄,negative=,neutral=😐" },
    });
    const id = h.discord.sendMessage({ content: "this is awful" });
    await h.waitForLog("no emoji for this label");
    expect(h.logs.find("no emoji for this label")[0]).toMatchObject({ label: "negative", messageId: id });
    expect(h.discord.requestsMatching("PUT", reactionPath(id))).toEqual([]);
  });
});

describe("skipping sentiment work that could not be used", () => {
  let h: BotHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("does no sentiment pass where the bot may not add reactions, but still answers mentions", async () => {
    h = await startBotHarness({
      model: { favouredToken: "negative" },
      denyInSecondChannel: PermissionFlagsBits.AddReactions,
    });
    const harness = h;
    const id = harness.discord.sendMessage({
      content: "great news everyone",
      channelId: harness.discord.secondChannelId,
    });
    const mentionId = harness.discord.sendMessage({
      content: `<@${harness.discord.botUser.id}> hello`,
      channelId: harness.discord.secondChannelId,
      mentionBot: true,
    });
    // The reply's own outcome: with reactions and replies sharing passes, the control reaction may come first.
    await harness.waitForLog("replied");
    await settle(harness);
    expect(harness.discord.requestsMatching("PUT", reactionPath(id))).toEqual([]);
    expect(harness.discord.requestsMatching("PUT", reactionPath(mentionId))).toEqual([]);
    const skipped = harness.logs.find("message skipped").find((line) => line.messageId === id);
    expect(skipped).toMatchObject({ reason: "no permission to react here" });
    // Only the control message in the first channel and the chat reply used the model.
    expect(harness.llm.schedulerStats.completed).toBe(2);
  });

  it("does no sentiment pass when every emoji is empty", async () => {
    h = await startBotHarness({ env: { MOOD_EMOJIS: "positive=,negative=,neutral=" } });
    const id = h.discord.sendMessage({ content: "anything at all" });
    h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
    await h.waitForLog("replied");
    expect(h.logs.find("message skipped").find((line) => line.messageId === id)).toMatchObject({
      reason: "reactions are off",
    });
    expect(h.llm.schedulerStats.completed).toBe(1);
    expect(h.discord.requestsMatching("PUT", /reactions/)).toEqual([]);
  });
});

describe("mention chat", () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await startBotHarness({
      model: { favouredToken: " lorem" },
      env: { CHAT_MAX_TOKENS: "600", CHAT_STREAM_EDIT_MS: "300" },
    });
  });
  afterAll(async () => h?.close());

  it("shows typing, then streams the reply: posted early, edited, continued past 2000 characters", async () => {
    const botId = h.discord.botUser.id;
    const id = h.discord.sendMessage({ content: `<@${botId}> tell me a long story`, mentionBot: true });
    await h.discord.waitForRequests("PUT", reactionPath(id));
    await h.waitForLog("replied", 1, 60_000);
    const posts = h.discord.requestsMatching("POST", /^\/channels\/\d+\/messages$/);
    const edits = h.discord.requestsMatching("PATCH", /^\/channels\/\d+\/messages\/\d+$/);
    const typing = h.discord.requestsMatching("POST", /^\/channels\/\d+\/typing$/);
    expect(typing.length).toBeGreaterThanOrEqual(1);
    expect(typing[0]?.at).toBeLessThanOrEqual(posts[0]?.at ?? 0);
    expect(body(posts[0]).message_reference).toMatchObject({ message_id: id });
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(edits.length).toBeGreaterThanOrEqual(1);
    for (const request of [...posts, ...edits]) {
      const { content, allowed_mentions } = body(request);
      expect(allowed_mentions).toEqual({ parse: [] });
      expect(typeof content).toBe("string");
      expect((content as string).length).toBeGreaterThan(0);
      expect((content as string).length).toBeLessThanOrEqual(2000);
    }
    // Edits to one message are throttled (CHAT_STREAM_EDIT_MS=300 here): never two within the interval.
    for (const path of new Set(edits.map((edit) => edit.path))) {
      const times = edits.filter((edit) => edit.path === path).map((edit) => edit.at);
      for (let i = 1; i < times.length; i++)
        expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(250);
    }
    // The final edit of each message holds its part of the full text, which is exactly what the history stored.
    const final = h.discord.finalMessages(h.discord.channelId);
    const shown = final.map((message) => message.content).join(" ");
    expect(shown.length).toBeGreaterThan(2000);
    expect(shown).toMatch(/^(lorem ?)+$/);
    const stored = (await h.store.turns.read(h.discord.channelId)) as Array<{ role: string; text: string }>;
    expect(shown.replace(/\s+/g, " ")).toBe(stored[1]?.text.replace(/\s+/g, " "));
  });

  it("chats in a thread, with the thread's own history", async () => {
    const threadId = h.discord.threadId;
    const before = h.logs.find("replied").length;
    const id = h.discord.sendMessage({
      content: `<@${h.discord.botUser.id}> hello from the thread`,
      mentionBot: true,
      channelId: threadId,
    });
    await h.waitForLog("replied", before + 1, 60_000);
    const reply = h.discord.finalMessages(threadId)[0];
    expect(reply?.reference).toMatchObject({ message_id: id });
    const threadHistory = (await h.store.turns.read(threadId)) as Array<{ text: string }>;
    expect(threadHistory[0]?.text).toBe("hello from the thread");
    const parentHistory = (await h.store.turns.read(h.discord.channelId)) as Array<{ text: string }>;
    expect(parentHistory.map((turn) => turn.text)).not.toContain("hello from the thread");
  });

  it("strips the mention from what the model sees and stores the turn", async () => {
    const history = (await h.store.turns.read(h.discord.channelId)) as Array<{
      role: string;
      text: string;
    }>;
    expect(history[0]).toMatchObject({ role: "user", text: "tell me a long story", author: "alice" });
    expect(history[1]?.role).toBe("assistant");
  });

  it("answers a bare mention with a hint, without model work", async () => {
    const before = h.discord.requestsMatching("POST", /^\/channels\/\d+\/messages$/).length;
    const id = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}>`, mentionBot: true });
    const replies = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, before + 1);
    const reply = replies.at(-1);
    expect(body(reply).content).toBe(WORDING.en.emptyMention);
    expect(body(reply).message_reference).toMatchObject({ message_id: id });
    expect(h.discord.requestsMatching("PUT", reactionPath(id))).toEqual([]);
  });
});

describe("model output that must not reach Discord as is", () => {
  let h: BotHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("says so briefly when the model's output is empty, never sending an empty message", async () => {
    h = await startBotHarness({ model: { favouredToken: "<|im_end|>" } });
    h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hello?`, mentionBot: true });
    const [reply] = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/);
    expect(body(reply).content).toBe(WORDING.en.emptyReply);
    expect(body(reply).allowed_mentions).toEqual({ parse: [] });
  });

  it("makes @everyone inert in the text and forbids every ping", async () => {
    h = await startBotHarness({ model: { favouredToken: " @everyone" } });
    h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> ping everybody`, mentionBot: true });
    const [reply] = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/);
    const content = body(reply).content as string;
    expect(content).toContain("@\u200beveryone");
    expect(content).not.toMatch(/@everyone/);
    expect(body(reply).allowed_mentions).toEqual({ parse: [] });
  });

  it("answers with a short notice when sending the reply fails, and keeps serving", async () => {
    h = await startBotHarness({ model: { favouredToken: "negative" } });
    let failures = 0;
    h.discord.override((request) => {
      if (request.method === "POST" && /\/messages$/.test(request.path) && failures === 0) {
        failures++;
        return { status: 400, body: { message: "Invalid Form Body", code: 50035 } };
      }
      return undefined;
    });
    h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
    const posts = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, 2);
    expect(body(posts[1]).content).toBe(WORDING.en.chatError);
    expect(h.logs.find("chat reply failed")).toHaveLength(1);
    await settle(h);
  });
});

describe("/sentiment", () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await startBotHarness({ model: { favouredToken: "positive" } });
  });
  afterAll(async () => h?.close());

  it("defers, then edits in the label, its emoji and a confidence from the probabilities", async () => {
    const { id, token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "best stream ever" }],
    });
    const [callback] = await h.discord.waitForRequests(
      "POST",
      new RegExp(`^/interactions/${id}/${token}/callback$`),
    );
    expect(body(callback).type).toBe(5);
    const [edit] = await h.discord.waitForRequests(
      "PATCH",
      new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`),
    );
    expect(body(edit).content).toMatch(
      /^😄 \*\*positive\*\* \(confidence (9\d|100)%\)\n-# positive \d+% · negative \d+% · neutral \d+%$/,
    );
    expect(body(edit).allowed_mentions).toEqual({ parse: [] });
    expect((edit?.at ?? 0) >= (callback?.at ?? 0)).toBe(true);
  });

  it("answers whitespace-only text with a clear message", async () => {
    const { token } = h.discord.sendSlashCommand({
      name: "sentiment",
      options: [{ name: "text", type: 3, value: "   " }],
    });
    const [edit] = await h.discord.waitForRequests(
      "PATCH",
      new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`),
    );
    expect(body(edit).content).toContain("There is no text to read");
  });

  it("tells the user an unknown command is unknown", async () => {
    const { token } = h.discord.sendSlashCommand({ name: "nope" });
    const [reply] = await h.discord.waitForRequests(
      "POST",
      new RegExp(`^/interactions/\\d+/${token}/callback$`),
    );
    expect(body(reply)).toMatchObject({ type: 4, data: { flags: 64, allowed_mentions: { parse: [] } } });
  });
});
