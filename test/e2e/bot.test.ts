import { PermissionFlagsBits } from "discord.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WORDING } from "../../src/wording/wording.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);
const emojiOf = (request: RecordedRequest | undefined) =>
  decodeURIComponent(request?.path.match(/reactions\/([^/]+)\/@me$/)?.[1] ?? "");
const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const referencedId = (reference: unknown) => (reference as { message_id?: string } | undefined)?.message_id;

interface StoredTurn {
  readonly role: string;
  readonly text: string;
  readonly author?: string;
  readonly messageId?: string;
}

/** The turns a channel's history holds for one message: its user turn, then the reply. */
async function storedTurns(h: BotHarness, channelId: string, messageId: string): Promise<StoredTurn[]> {
  const turns = (await h.store.turns.read(channelId)) as StoredTurn[] | undefined;
  // A channel with no history reads as nothing stored.
  return (turns ?? []).filter((turn) => turn.messageId === messageId);
}

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

  it("ignores bots, webhooks, itself, system messages and empty text, each with its reason", async () => {
    const ignored = {
      "from a bot": h.discord.sendMessage({
        content: "beep",
        author: { id: "200000000000000001", username: "otherbot", bot: true },
      }),
      "from a webhook": h.discord.sendMessage({ content: "hook", webhookId: "300000000000000001" }),
      "own message": h.discord.sendMessage({ content: "me", author: h.discord.botUser }),
      "system message": h.discord.sendMessage({ content: "", type: 7 }),
      "no text": h.discord.sendMessage({ content: "   " }),
    };
    const attachmentOnly = h.discord.sendMessage({
      content: "",
      attachments: [{ id: "1", filename: "a.png", size: 1, url: "x", proxy_url: "x" }],
    });
    const cases: Array<[string, string]> = [...Object.entries(ignored), ["no text", attachmentOnly]];
    for (const [reason, messageId] of cases) {
      // Skipping the message is its last outcome: nothing else is done for it.
      expect(await h.outcomes.next("skipped", { messageId }), reason).toMatchObject({
        job: "message",
        reason,
      });
      expect(h.outcomes.about(messageId)).toHaveLength(1);
      expect(h.discord.requests.filter((r) => r.path.includes(messageId))).toEqual([]);
    }
  });

  it("is never sent direct messages while ALLOW_DMS is off: it does not ask for them", () => {
    const DIRECT_MESSAGES = 1 << 12;
    expect((h.discord.identifies[0] as { intents: number }).intents & DIRECT_MESSAGES).toBe(0);
  });

  it("never sends text for a plain message", async () => {
    const since = h.discord.requests.length;
    const plain = h.discord.sendMessage({ content: "just saying hello to everyone" });
    await h.outcomes.next("reacted", { messageId: plain });
    // Mentions are answered one at a time per channel, in the order sent: had the plain message been answered,
    // its reply would be posted before this one's.
    const later = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
    await h.outcomes.next("replied", { messageId: later });
    const posts = h.discord.requests
      .slice(since)
      .filter((r) => r.method === "POST" && /\/messages$/.test(r.path));
    expect(posts.length).toBeGreaterThan(0);
    for (const post of posts) expect(body(post).message_reference).toMatchObject({ message_id: later });
    expect(h.outcomes.about(plain).map((outcome) => outcome.kind)).toEqual(["reacted"]);
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

  it("does not react when the label's emoji is empty, and says which label it measured", async () => {
    h = await startBotHarness({
      model: { favouredToken: "negative" },
      env: { MOOD_EMOJIS: "positive=😄,negative=,neutral=😐" },
    });
    const id = h.discord.sendMessage({ content: "this is awful" });
    expect(await h.outcomes.next("skipped", { messageId: id, job: "reaction" })).toMatchObject({
      reason: "no emoji for this label",
      label: "negative",
    });
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
    expect(await harness.outcomes.next("skipped", { messageId: id })).toMatchObject({
      job: "message",
      reason: "no permission to react here",
    });
    expect(await harness.outcomes.next("skipped", { messageId: mentionId })).toMatchObject({
      job: "reaction",
      reason: "no permission to react here",
    });
    await harness.outcomes.next("replied", { messageId: mentionId });
    await settle(harness);
    expect(harness.discord.requestsMatching("PUT", reactionPath(id))).toEqual([]);
    expect(harness.discord.requestsMatching("PUT", reactionPath(mentionId))).toEqual([]);
    // The model read only the control message in the first channel, and wrote the one reply.
    expect(harness.model.callsOf("sentiment").map((call) => call.text)).toEqual([
      "a control message after the others",
    ]);
    expect(harness.model.callsOf("chat")).toHaveLength(1);
  });

  it("does no sentiment pass when every emoji is empty", async () => {
    h = await startBotHarness({ env: { MOOD_EMOJIS: "positive=,negative=,neutral=" } });
    const id = h.discord.sendMessage({ content: "anything at all" });
    const mentionId = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
    expect(await h.outcomes.next("skipped", { messageId: id })).toMatchObject({
      job: "message",
      reason: "reactions are off",
    });
    await h.outcomes.next("replied", { messageId: mentionId });
    expect(h.model.callsOf("sentiment")).toEqual([]);
    expect(h.model.callsOf("chat")).toHaveLength(1);
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
    const since = h.discord.requests.length;
    const id = h.discord.sendMessage({ content: `<@${botId}> tell me a long story`, mentionBot: true });
    await h.discord.waitForRequests("PUT", reactionPath(id));
    const replied = await h.outcomes.next("replied", { messageId: id }, 60_000);
    const sent = (method: string, path: RegExp) =>
      h.discord.requests.slice(since).filter((r) => r.method === method && path.test(r.path));
    const posts = sent("POST", /^\/channels\/\d+\/messages$/);
    const edits = sent("PATCH", /^\/channels\/\d+\/messages\/\d+$/);
    const typing = sent("POST", /^\/channels\/\d+\/typing$/);
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
    const first = final.findIndex((message) => referencedId(message.reference) === id);
    const mine = final.slice(first, first + replied.messages);
    expect(mine).toHaveLength(posts.length);
    const shown = mine.map((message) => message.content).join(" ");
    expect(shown.length).toBeGreaterThan(2000);
    expect(shown).toMatch(/^(lorem ?)+$/);
    const stored = await storedTurns(h, h.discord.channelId, id);
    expect(stored.map((turn) => turn.role)).toEqual(["user", "assistant"]);
    expect(shown.replace(/\s+/g, " ")).toBe(stored[1]?.text.replace(/\s+/g, " "));
  });

  it("chats in a thread, with the thread's own history", async () => {
    const threadId = h.discord.threadId;
    const id = h.discord.sendMessage({
      content: `<@${h.discord.botUser.id}> hello from the thread`,
      mentionBot: true,
      channelId: threadId,
    });
    await h.outcomes.next("replied", { messageId: id }, 60_000);
    const replies = h.discord
      .finalMessages(threadId)
      .filter((message) => referencedId(message.reference) === id);
    expect(replies).toHaveLength(1);
    const threadTurns = await storedTurns(h, threadId, id);
    expect(threadTurns[0]).toMatchObject({ role: "user", text: "hello from the thread" });
    expect(await storedTurns(h, h.discord.channelId, id)).toEqual([]);
  });

  it("strips the mention from what the model sees and stores the turn", async () => {
    const id = h.discord.sendMessage({
      content: `<@${h.discord.botUser.id}> what do you   see?`,
      mentionBot: true,
    });
    await h.outcomes.next("replied", { messageId: id }, 60_000);
    const seen = h.model.callsOf("chat").map((call) => call.turns.at(-1)?.text ?? "");
    const asked = seen.find((text) => text.includes("what do you see?"));
    expect(asked).toBeDefined();
    expect(asked).not.toContain("<@");
    const stored = await storedTurns(h, h.discord.channelId, id);
    expect(stored[0]).toMatchObject({ role: "user", text: "what do you see?", author: "alice" });
    expect(stored[1]?.role).toBe("assistant");
  });

  it("answers a bare mention with a hint, without model work", async () => {
    const before = h.discord.requestsMatching("POST", /^\/channels\/\d+\/messages$/).length;
    const id = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}>`, mentionBot: true });
    const replies = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, before + 1);
    const reply = replies.at(-1);
    expect(body(reply).content).toBe(WORDING.en.emptyMention);
    expect(body(reply).message_reference).toMatchObject({ message_id: id });
    expect(await h.outcomes.next("replied", { messageId: id })).toMatchObject({ fromModel: false });
    expect(await h.outcomes.next("skipped", { messageId: id })).toMatchObject({
      job: "reaction",
      reason: "no text",
    });
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
    const id = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> hi`, mentionBot: true });
    const posts = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, 2);
    expect(body(posts[1]).content).toBe(WORDING.en.chatError);
    expect(await h.outcomes.next("failed", { messageId: id, job: "reply" })).toMatchObject({
      cutShort: false,
    });
    expect(h.outcomes.all("replied", { messageId: id })).toEqual([]);
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
