import {
  Client,
  Events,
  GatewayIntentBits,
  type Message,
  MessageReferenceType,
  MessageType,
  Partials,
  PermissionFlagsBits,
} from "discord.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PlanInputs, planMessage, shareBucket } from "../../src/discord/messagePlan.js";
import { type Config, loadConfig } from "../../src/platform/config.js";
import type { Settings } from "../../src/store/settings.js";
import { FakeDiscord, type FakeUser } from "../../testkit/fakeDiscord.js";

/*
 * planMessage's decision table, on real discord.js messages: a discord.js client logged in to the loopback Discord
 * receives each message exactly as Discord sends it (mentions, message_reference, referenced_message, member
 * roles, channel overwrites), and the plan is taken from that. Nothing is stubbed; no model runs.
 */

let discord: FakeDiscord;
let client: Client;
const arrived = new Map<string, Message>();
const waiting = new Map<string, (message: Message) => void>();

beforeAll(async () => {
  // The second channel denies Add Reactions to everyone, as a server's channel overwrite would.
  discord = await new FakeDiscord({ denyInSecondChannel: PermissionFlagsBits.AddReactions }).start();
  client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.MessageContent,
      GatewayIntentBits.DirectMessages,
    ],
    partials: [Partials.Channel],
    rest: { api: discord.apiUrl },
  });
  client.on(Events.MessageCreate, (message) => {
    arrived.set(message.id, message);
    waiting.get(message.id)?.(message);
  });
  const ready = new Promise((resolve) => client.once(Events.ClientReady, resolve));
  await client.login("test-token.abc.def");
  await ready;
});
afterAll(async () => {
  await client?.destroy();
  await discord?.stop();
});

/** Sends a message through the loopback and returns it as discord.js built it. */
function receive(options: Parameters<FakeDiscord["sendMessage"]>[0]): Promise<Message> {
  const id = discord.sendMessage(options);
  const already = arrived.get(id);
  if (already) return Promise.resolve(already);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`message ${id} never reached the client`)), 10_000);
    waiting.set(id, (message) => {
      clearTimeout(timer);
      resolve(message);
    });
  });
}

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    DISCORD_TOKEN: "test-token.abc.def",
    DISCORD_CLIENT_ID: discord.applicationId,
    ...env,
  });
}

function inputs(overrides: Partial<PlanInputs> & { settings?: Settings } = {}): PlanInputs {
  return {
    botId: discord.botUser.id,
    config: config(),
    reactionsForbidden: false,
    settings: {},
    optedOut: false,
    modelReady: true,
    ...overrides,
  };
}

const bob: FakeUser = { id: "100000000000000002", username: "bob" };
const mention = () => `<@${discord.botUser.id}>`;

describe("who and where: the message is dropped before any other check", () => {
  it.each([
    ["own message", () => ({ content: "hi", author: discord.botUser })],
    [
      "from a bot",
      () => ({ content: "beep", author: { id: "200000000000000001", username: "b", bot: true } }),
    ],
    ["from a webhook", () => ({ content: "hook", webhookId: "300000000000000001" })],
    // Type 7: a member joined. Discord sends it with empty content; mentioning the bot does not change it.
    ["system message", () => ({ content: "", type: 7, mentionBot: true })],
  ])("%s", async (reason, message) => {
    const plan = planMessage(await receive(message()), inputs());
    expect(plan).toEqual({ act: false, reason });
  });

  it("a denylisted channel, and a thread under it, even for a mention", async () => {
    const denied = inputs({ config: config({ CHANNEL_DENYLIST: discord.channelId }) });
    const inChannel = await receive({ content: `${mention()} hi`, mentionBot: true });
    const inThread = await receive({ content: "hi", channelId: discord.threadId });
    expect(planMessage(inChannel, denied)).toEqual({ act: false, reason: "channel is denylisted" });
    expect(planMessage(inThread, denied)).toEqual({ act: false, reason: "channel is denylisted" });
    expect(planMessage(inThread, inputs()).act).toBe(true);
  });

  it("a channel outside the allowlist; a thread of an allowed channel is inside it, and a DM is not bound by it", async () => {
    const allowed = config({ CHANNEL_ALLOWLIST: discord.channelId, ALLOW_DMS: "true" });
    const outside = await receive({ content: "hi", channelId: discord.secondChannelId });
    const thread = await receive({ content: "hi", channelId: discord.threadId });
    const direct = await receive({ content: "hi", guildId: null });
    expect(planMessage(outside, inputs({ config: allowed }))).toEqual({
      act: false,
      reason: "channel is not allowlisted",
    });
    expect(planMessage(thread, inputs({ config: allowed }))).toMatchObject({ act: true, react: true });
    expect(planMessage(direct, inputs({ config: allowed }))).toMatchObject({ act: true, reply: true });
  });

  it("a direct message while DMs are off; with them on, every DM with text is answered", async () => {
    const direct = await receive({ content: "hello bot", guildId: null });
    expect(planMessage(direct, inputs())).toEqual({ act: false, reason: "direct messages are off" });
    expect(planMessage(direct, inputs({ config: config({ ALLOW_DMS: "true" }) }))).toMatchObject({
      act: true,
      react: true,
      reply: true,
      text: "hello bot",
    });
  });
});

describe("what the message asks for", () => {
  it("a plain message with text gets a reaction and no reply; one with no text gets nothing", async () => {
    const plain = await receive({ content: "  what a lovely day  " });
    expect(planMessage(plain, inputs())).toEqual({
      act: true,
      react: true,
      reply: false,
      text: "what a lovely day",
      emojis: config().moodEmojis,
    });
    for (const content of ["", "   "]) {
      expect(planMessage(await receive({ content }), inputs())).toEqual({ act: false, reason: "no text" });
    }
  });

  it("a mention is answered with the mention taken out; a bare mention is answered with no reaction", async () => {
    const asked = await receive({ content: `${mention()}   how are you?`, mentionBot: true });
    expect(planMessage(asked, inputs())).toMatchObject({
      act: true,
      react: true,
      reply: true,
      text: "how are you?",
    });
    const bare = await receive({ content: `<@!${discord.botUser.id}>`, mentionBot: true });
    expect(planMessage(bare, inputs())).toMatchObject({
      act: true,
      react: false,
      reply: true,
      text: "",
      noReactionReason: "no text",
    });
  });

  it("in a chat channel every message with text is answered, but not an empty one", async () => {
    const chat = inputs({ settings: { "chat-channel": "on" } });
    expect(planMessage(await receive({ content: "anyone?" }), chat)).toMatchObject({
      act: true,
      react: true,
      reply: true,
    });
    expect(planMessage(await receive({ content: " " }), chat)).toEqual({ act: false, reason: "no text" });
  });

  /*
   * A reply with its ping on (Discord's default) puts the replied-to author in `mentions`: a pinged reply to the
   * bot is a mention whatever reply-chain says. With the ping off only reply-chain on makes it count.
   */
  describe("replies to the bot's message", () => {
    const replyTo = () => ({ id: discord.snowflake() });

    it("arrive as Discord sends them: a reference, the message replied to, and the bot in mentions only when pinged", async () => {
      const channel = client.channels.cache.get(discord.channelId);
      if (!channel?.isSendable()) throw new Error("the first channel is not a text channel");
      const botMessage = await channel.send("I said this earlier");
      const pinged = await receive({ content: "yes", replyTo: { id: botMessage.id }, mentionBot: true });
      const unpinged = await receive({ content: "no", replyTo: { id: botMessage.id } });
      for (const reply of [pinged, unpinged]) {
        expect(reply.type).toBe(MessageType.Reply);
        expect(reply.reference).toEqual({
          type: MessageReferenceType.Default,
          messageId: botMessage.id,
          channelId: discord.channelId,
          guildId: discord.guildId,
        });
        expect(reply.mentions.repliedUser?.id).toBe(discord.botUser.id);
        // referenced_message is the channel's own copy of the bot's message, which discord.js caches.
        expect(reply.channel.messages.cache.get(botMessage.id)?.content).toBe("I said this earlier");
      }
      expect([...pinged.mentions.users.keys()]).toEqual([discord.botUser.id]);
      expect(pinged.mentions.members?.has(discord.botUser.id)).toBe(true);
      expect([...unpinged.mentions.users.keys()]).toEqual([]);
      // A reply's ping is no `<@id>` in its text.
      expect(pinged.content).toBe("yes");
    });

    it.each([
      { pinged: true, replyChain: "off", answered: true },
      { pinged: true, replyChain: "on", answered: true },
      { pinged: false, replyChain: "on", answered: true },
      { pinged: false, replyChain: "off", answered: false },
    ])(
      "pinged $pinged, reply-chain $replyChain: answered $answered",
      async ({ pinged, replyChain, answered }) => {
        const reply = await receive({ content: "thanks!", replyTo: replyTo(), mentionBot: pinged });
        expect(reply.reference?.messageId).toBeDefined();
        expect(reply.mentions.repliedUser?.id).toBe(discord.botUser.id);
        const plan = planMessage(reply, inputs({ settings: { "reply-chain": replyChain } }));
        expect(plan).toMatchObject({ act: true, react: true, reply: answered, text: "thanks!" });
      },
    );

    it("a pinged reply with no text is a bare mention; an unpinged one is nothing, even with reply-chain on", async () => {
      const chain = inputs({ settings: { "reply-chain": "on" } });
      const pinged = await receive({ content: "", replyTo: replyTo(), mentionBot: true });
      const unpinged = await receive({ content: "", replyTo: replyTo() });
      expect(planMessage(pinged, chain)).toMatchObject({ act: true, reply: true, react: false });
      expect(planMessage(unpinged, chain)).toEqual({ act: false, reason: "no text" });
    });

    it("a reply to someone else is not addressed to the bot, even with reply-chain on", async () => {
      const toBob = await receive({ content: "agreed", replyTo: { id: discord.snowflake(), author: bob } });
      expect(toBob.mentions.repliedUser?.id).toBe(bob.id);
      expect(planMessage(toBob, inputs({ settings: { "reply-chain": "on" } }))).toMatchObject({
        act: true,
        reply: false,
      });
    });
  });
});

describe("why there is no reaction: the first reason in order, and a mention is still answered", () => {
  it("the member opted out", async () => {
    const plain = await receive({ content: "my secret mood" });
    const asked = await receive({ content: `${mention()} hi`, mentionBot: true });
    expect(planMessage(plain, inputs({ optedOut: true }))).toEqual({
      act: false,
      reason: "member opted out",
    });
    expect(planMessage(asked, inputs({ optedOut: true }))).toMatchObject({
      act: true,
      react: false,
      reply: true,
      noReactionReason: "member opted out",
    });
  });

  it("reactions are off, by the setting or because every emoji is none", async () => {
    const plain = await receive({ content: "meh" });
    const off: Settings[] = [
      { reactions: "off" },
      { "emoji-positive": "none", "emoji-negative": "none", "emoji-neutral": "none" },
    ];
    for (const settings of off) {
      expect(planMessage(plain, inputs({ settings }))).toEqual({ act: false, reason: "reactions are off" });
    }
    // One emoji left is enough to react with.
    const oneLeft = { "emoji-positive": "none", "emoji-negative": "none" };
    expect(planMessage(plain, inputs({ settings: oneLeft }))).toMatchObject({
      act: true,
      react: true,
      emojis: { positive: "", negative: "", neutral: config().moodEmojis.neutral },
    });
  });

  it("no permission to react: a channel overwrite denies Add Reactions, or a recent 403 there", async () => {
    const denied = await receive({ content: "hi", channelId: discord.secondChannelId });
    const allowed = await receive({ content: "hi" });
    expect(planMessage(denied, inputs())).toEqual({ act: false, reason: "no permission to react here" });
    expect(planMessage(allowed, inputs())).toMatchObject({ act: true, react: true });
    expect(planMessage(allowed, inputs({ reactionsForbidden: true }))).toEqual({
      act: false,
      reason: "no permission to react here",
    });
  });

  it("outside the reaction share: a message reacts when its bucket is below the share", async () => {
    const message = await receive({ content: "sometimes" });
    const bucket = shareBucket(message.id);
    const share = (value: number) => inputs({ settings: { "reaction-share": String(value) } });
    expect(planMessage(message, share(bucket))).toEqual({ act: false, reason: "outside the reaction share" });
    expect(planMessage(message, share(bucket + 1))).toMatchObject({ act: true, react: true });
    expect(planMessage(message, share(0))).toEqual({ act: false, reason: "outside the reaction share" });
  });

  it("the model is not ready (a model server away): no reaction, and a mention is still answered", async () => {
    const plain = await receive({ content: "what a day" });
    const asked = await receive({ content: `${mention()} are you there?`, mentionBot: true });
    expect(planMessage(plain, inputs({ modelReady: false }))).toEqual({
      act: false,
      reason: "model unavailable",
    });
    expect(planMessage(asked, inputs({ modelReady: false }))).toMatchObject({
      act: true,
      react: false,
      reply: true,
      noReactionReason: "model unavailable",
    });
    // Checked last: a message that gets no reaction by design is not counted against the model.
    expect(planMessage(plain, inputs({ modelReady: false, settings: { reactions: "off" } }))).toEqual({
      act: false,
      reason: "reactions are off",
    });
  });

  it("the reasons are checked in order: no text, opted out, reactions off, permission, share", async () => {
    const bare = await receive({ content: mention(), mentionBot: true, channelId: discord.secondChannelId });
    const asked = await receive({
      content: `${mention()} hi`,
      mentionBot: true,
      channelId: discord.secondChannelId,
    });
    const everything = inputs({
      optedOut: true,
      reactionsForbidden: true,
      settings: { reactions: "off", "reaction-share": "0" },
    });
    const reasonFor = (message: Message, plan: PlanInputs) => {
      const planned = planMessage(message, plan);
      return planned.act ? planned.noReactionReason : planned.reason;
    };
    expect(reasonFor(bare, everything)).toBe("no text");
    expect(reasonFor(asked, everything)).toBe("member opted out");
    expect(reasonFor(asked, { ...everything, optedOut: false })).toBe("reactions are off");
    expect(reasonFor(asked, { ...everything, optedOut: false, settings: { "reaction-share": "0" } })).toBe(
      "no permission to react here",
    );
    const allowedChannel = await receive({ content: `${mention()} hi`, mentionBot: true });
    expect(reasonFor(allowedChannel, inputs({ settings: { "reaction-share": "0" } }))).toBe(
      "outside the reaction share",
    );
  });
});
