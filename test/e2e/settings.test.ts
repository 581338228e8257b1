import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { type Scope, SETTING_KEYS } from "../../src/store/settings.js";
import { WORDING } from "../../src/wording.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const reactionPath = (messageId: string) => new RegExp(`^/channels/\\d+/messages/${messageId}/reactions/`);

let h: BotHarness;
beforeAll(async () => {
  h = await startBotHarness({ model: { favouredToken: "negative" } });
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
  expect(await h.waitForOutcome(second, "message skipped")).toMatchObject({ reason: "reactions are off" });
  expect(h.discord.requestsMatching("PUT", reactionPath(second))).toEqual([]);

  // The other channel keeps the server defaults.
  const other = h.discord.sendMessage({ content: "awful too", channelId: h.discord.secondChannelId });
  const [put2] = await h.discord.waitForRequests("PUT", reactionPath(other));
  expect(decodeURIComponent(put2?.path ?? "")).toContain("😢");
});

it("answers every message in a chat channel, and replies to its own messages with reply chains on", async () => {
  const channelId = h.discord.secondChannelId;
  const plain = h.discord.sendMessage({ content: "no mention here", channelId });
  expect(await h.waitForOutcome(plain, "message planned")).toMatchObject({ react: true, reply: false });

  const { token } = h.discord.sendSlashCommand({
    name: "settings",
    channelId,
    options: [
      {
        name: "set",
        type: 1,
        value: undefined,
        ...{
          options: [
            { name: "key", type: 3, value: "chat-channel" },
            { name: "value", type: 3, value: "on" },
          ],
        },
      },
    ],
  });
  await h.discord.waitForRequests("PATCH", new RegExp(`/${token}/messages/@original$`));
  const everything = h.discord.sendMessage({ content: "now you answer everything?", channelId });
  await h.waitForOutcome(everything, "replied");

  expect(await settings("set", { key: "reply-chain", value: "on" })).toContain("reply-chain");
  const toBot = h.discord.sendMessage({ content: "replying to you", replyTo: { id: h.discord.snowflake() } });
  await h.waitForOutcome(toBot, "replied");
  // A reply to someone else is not addressed to the bot.
  const toBob = h.discord.sendMessage({
    content: "replying to bob",
    replyTo: { id: h.discord.snowflake(), author: { id: "100000000000000002", username: "bob" } },
  });
  expect(await h.waitForOutcome(toBob, "message planned")).toMatchObject({ reply: false });
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

  await settings("set", { key: "persona", value: "You are a pirate. Answer like one.", scope: "guild" });
  const turns = h.logs.find("chat turn done").length;
  h.discord.sendMessage({ content: `<@${h.discord.botUser.id}> ahoy?`, mentionBot: true });
  const [turn] = (await h.waitForLog("chat turn done", turns + 1)).slice(-1);
  expect(turn?.customPersona).toBe(true);
});
