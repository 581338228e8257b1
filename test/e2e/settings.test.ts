import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Scope } from "../../src/store/settings.js";
import { SETTING_KEYS } from "../../src/wording/keys.js";
import { WORDING } from "../../src/wording/wording.js";
import type { FakeUser, RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);

let h: BotHarness;
beforeAll(async () => {
  h = await startBotHarness({
    model: { favouredToken: "negative" },
    // Many chat turns in one minute across these tests: the rate limits have tests of their own.
    env: { CHAT_USER_PER_MINUTE: "1000", CHAT_CHANNEL_PER_MINUTE: "1000" },
  });
});
afterAll(async () => h?.close());
// Each test starts from the defaults, whatever the others set.
afterEach(async () => {
  const scopes: Array<[Scope, string]> = [
    ["guild", h.discord.guildId],
    ["channel", h.discord.channelId],
    ["channel", h.discord.secondChannelId],
  ];
  for (const [scope, id] of scopes)
    for (const key of SETTING_KEYS) await h.app.settings.reset(scope, id, key);
});

/** Runs /settings <sub> with options and returns the ephemeral answer's text. */
async function settings(sub: string, options: Record<string, string>, permissions?: string): Promise<string> {
  const { token } = h.discord.sendSlashCommand({
    name: "settings",
    options: [
      {
        name: sub,
        type: 1,
        value: undefined,
        ...{ options: Object.entries(options).map(([name, value]) => ({ name, type: 3, value })) },
      },
    ],
    ...(permissions === undefined ? {} : { permissions }),
  });
  // Every /settings answer reads or writes the store, so it defers first (privately), then edits.
  const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${token}/callback$`));
  expect(body(callback)).toMatchObject({ type: 5, data: { flags: 64 } });
  const [edit] = await h.discord.waitForRequests("PATCH", new RegExp(`/${token}/messages/@original$`));
  expect(body(edit).allowed_mentions).toEqual({ parse: [] });
  return String(body(edit).content);
}

it("needs Manage Server", async () => {
  expect(await settings("set", { key: "reactions", value: "off" }, "0")).toContain("Manage Server");
});

it("rejects a bad value with the reason and the accepted values", async () => {
  const answer = await settings("set", { key: "reaction-share", value: "lots" });
  expect(answer).toBe(
    WORDING.en.settings.invalid("reaction-share", WORDING.en.settings.help["reaction-share"]),
  );
});

it("changes emojis and turns reactions off per channel, from the next message, with no restart", async () => {
  expect(await settings("set", { key: "emoji-negative", value: "💢" })).toContain("is now `💢`");
  const first = h.discord.sendMessage({ content: "this is awful" });
  const [put] = await h.discord.waitForRequests("PUT", reactionPath(first));
  expect(decodeURIComponent(put?.path ?? "")).toContain("💢");

  await settings("set", { key: "reactions", value: "off" });
  const second = h.discord.sendMessage({ content: "still awful" });
  expect(await h.outcomes.next("skipped", { messageId: second })).toMatchObject({
    job: "message",
    reason: "reactions are off",
  });
  expect(h.discord.requestsMatching("PUT", reactionPath(second))).toEqual([]);

  // The other channel keeps the server defaults.
  const other = h.discord.sendMessage({ content: "awful too", channelId: h.discord.secondChannelId });
  const [put2] = await h.discord.waitForRequests("PUT", reactionPath(other));
  expect(decodeURIComponent(put2?.path ?? "")).toContain("😢");
});

/** A member other than the tests' default one, so no test's chat turns count against another's. */
const someone = (): FakeUser => ({ id: h.discord.snowflake(), username: "carol" });

/** Runs /settings set in a channel, as a member with Manage Server. */
async function set(key: string, value: string, channelId = h.discord.channelId): Promise<void> {
  const { token } = h.discord.sendSlashCommand({
    name: "settings",
    channelId,
    options: [
      {
        name: "set",
        type: 1,
        options: [
          { name: "key", type: 3, value: key },
          { name: "value", type: 3, value },
        ],
      },
    ],
  });
  const [edit] = await h.discord.waitForRequests("PATCH", new RegExp(`/${token}/messages/@original$`));
  expect(String(body(edit).content)).toContain(`\`${key}\` is now \`${value}\``);
}

/** The last turn of every chat prompt the model received: the message each reply answered. */
const lastTurnsSeen = () => h.model.callsOf("chat").map((call) => call.turns.at(-1)?.text);

/** Waits for the reply to a message, and returns the bot's first message of it as the fake holds it. */
async function repliedTo(messageId: string, channelId: string): Promise<{ id: string }> {
  await h.outcomes.next("replied", { messageId });
  const reply = h.discord
    .finalMessages(channelId)
    .find((message) => (message.reference as { message_id?: string } | undefined)?.message_id === messageId);
  if (!reply) throw new Error(`the bot posted no reply to ${messageId}`);
  return reply;
}

/**
 * Proves a message got no reply, from outcomes alone: its own mood outcome, then a later mention in the same
 * channel answered. Mentions are admitted in arrival order and answered one at a time per channel, so a reply to
 * the earlier message, had it been planned, would have been told before the later one's.
 */
async function noReplyTo(messageId: string, channelId: string): Promise<void> {
  await h.outcomes.next("reacted", { messageId });
  const later = h.discord.sendMessage({
    content: `<@${h.discord.botUser.id}> and this one?`,
    mentionBot: true,
    channelId,
    author: someone(),
  });
  await h.outcomes.next("replied", { messageId: later });
  const replyJobs = h.outcomes
    .about(messageId)
    .filter(
      (outcome) =>
        ["replied", "queued", "refused"].includes(outcome.kind) ||
        ("job" in outcome && outcome.job === "reply"),
    );
  expect(replyJobs).toEqual([]);
  const answered = h.discord
    .requestsMatching("POST", /^\/channels\/\d+\/messages$/)
    .filter(
      (post) =>
        (body(post).message_reference as { message_id?: string } | undefined)?.message_id === messageId,
    );
  expect(answered).toEqual([]);
}

it("answers every message with text in a chat channel, and only there", async () => {
  const channelId = h.discord.secondChannelId;
  const before = h.discord.sendMessage({ content: "no mention here", channelId, author: someone() });
  await noReplyTo(before, channelId);

  await set("chat-channel", "on", channelId);
  const everything = h.discord.sendMessage({
    content: "now you answer everything?",
    channelId,
    author: someone(),
  });
  await repliedTo(everything, channelId);
  expect(lastTurnsSeen()).toContainEqual(expect.stringContaining("now you answer everything?"));
  // The first channel is no chat channel.
  const elsewhere = h.discord.sendMessage({ content: "and here?", author: someone() });
  await noReplyTo(elsewhere, h.discord.channelId);
});

/*
 * A reply to the bot's message with its ping left on (Discord's default) puts the bot in `mentions`: it is a
 * mention, answered whatever reply-chain says. With the ping turned off only `reply-chain on` makes it count.
 */
describe("a reply to the bot's message", () => {
  it.each([
    { ping: "on", replyChain: "off", answered: true },
    { ping: "on", replyChain: "on", answered: true },
    { ping: "off", replyChain: "on", answered: true },
    { ping: "off", replyChain: "off", answered: false },
  ])(
    "with the ping $ping and reply-chain $replyChain: answered $answered",
    async ({ ping, replyChain, answered }) => {
      const channelId = h.discord.channelId;
      const author = someone();
      const asked = h.discord.sendMessage({
        content: `<@${h.discord.botUser.id}> tell me something`,
        mentionBot: true,
        author,
      });
      const botMessage = await repliedTo(asked, channelId);
      await set("reply-chain", replyChain);

      const words = `and then what? (ping ${ping}, reply-chain ${replyChain})`;
      const reply = h.discord.sendMessage({
        content: words,
        replyTo: { id: botMessage.id },
        mentionBot: ping === "on",
        author,
      });
      if (!answered) return noReplyTo(reply, channelId);
      await repliedTo(reply, channelId);
      expect(lastTurnsSeen()).toContainEqual(expect.stringContaining(words));
    },
  );

  it("to someone else's message is not addressed to the bot, even with reply-chain on", async () => {
    await set("reply-chain", "on");
    const bob = { id: "100000000000000002", username: "bob" };
    const toBob = h.discord.sendMessage({
      content: "replying to bob",
      replyTo: { id: h.discord.snowflake(), author: bob },
      author: someone(),
    });
    await noReplyTo(toBob, h.discord.channelId);
  });
});

it("shows what is in force and where it comes from, in the channel's language", async () => {
  await settings("set", { key: "emoji-negative", value: "💢" });
  await settings("set", { key: "language", value: "en", scope: "guild" });
  const shown = await settings("show", {});
  expect(shown).toContain("`emoji-negative`: 💢 (channel)");
  expect(shown).toContain("`language`: en (server)");
  expect(shown).toContain("`persona`: (default)");

  await settings("set", { key: "language", value: "zh", scope: "guild" });
  const inChinese = await settings("show", {});
  expect(inChinese).toContain(WORDING.zh.settings.inForce);
  expect(inChinese).toContain("`emoji-negative`: 💢 (频道)");
  expect(inChinese).toContain("`language`: zh (服务器)");
  await settings("reset", { key: "language", scope: "guild" });
});

it("speaks the channel's language in its own notices, and chats with the server's persona", async () => {
  await settings("set", { key: "language", value: "zh" });
  const postsBefore = h.discord.requestsMatching("POST", /^\/channels\/\d+\/messages$/).length;
  h.discord.sendMessage({ content: `<@${h.discord.botUser.id}>`, mentionBot: true });
  const posts = await h.discord.waitForRequests("POST", /^\/channels\/\d+\/messages$/, postsBefore + 1);
  expect(posts.map((post) => body(post).content)).toContain(WORDING.zh.emptyMention);

  const persona = "You are a pirate. Answer like one.";
  await settings("set", { key: "persona", value: persona, scope: "guild" });
  const ahoy = h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> ahoy?`, mentionBot: true });
  await h.outcomes.next("replied", { messageId: ahoy });
  const call = h.model.callsOf("chat").find((chat) => chat.turns.at(-1)?.text.includes("ahoy?"));
  expect(call?.turns[0]).toMatchObject({ role: "system" });
  expect(call?.turns[0]?.text).toContain(persona);
});
