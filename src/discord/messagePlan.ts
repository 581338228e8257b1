import { type Message, PermissionFlagsBits } from "discord.js";
import type { Config } from "../platform/config.js";
import type { EmojiMap } from "../platform/sentimentLabels.js";
import { effectiveEmojis, type Settings } from "../store/settings.js";
import { stripBotMention } from "../text/stripMentions.js";
import { homeChannelId } from "./homeChannel.js";
import { MODEL_UNAVAILABLE } from "./reply.js";

/*
 * What a message deserves (a mood reaction, a reply, or nothing, with the reason), decided from the message and
 * what was read for it, without doing any of it: onMessage reads the inputs and carries the plan out.
 */

export type MessagePlan =
  | { readonly act: false; readonly reason: string }
  | {
      readonly act: true;
      readonly react: boolean;
      /** Why there is no reaction, when there is text but reacting is pointless here. */
      readonly noReactionReason?: string;
      readonly reply: boolean;
      readonly text: string;
      /** The mood emojis in force here: the config's with this channel's /settings applied. */
      readonly emojis: EmojiMap;
    };

/** Adding a reaction needs both: Discord refuses the first reaction on a message without Read Message History. */
const REACT_PERMISSIONS = [PermissionFlagsBits.AddReactions, PermissionFlagsBits.ReadMessageHistory];

export interface PlanInputs {
  readonly botId: string;
  readonly config: Config;
  /** Discord answered 403 to a reaction in this channel recently. */
  readonly reactionsForbidden: boolean;
  /** The guild's and channel's /settings. */
  readonly settings: Settings;
  /** The author opted out with /privacy (or their choice could not be read). */
  readonly optedOut: boolean;
  /** The model can take work now (a model server can be away). */
  readonly modelReady: boolean;
}

/** A stable 0–99 bucket per message, so a reaction share picks the same messages on every shard. */
export function shareBucket(messageId: string): number {
  return Number(BigInt(messageId) % 100n);
}

/** Why a message's sender means the bot never acts on it, or undefined for a human's ordinary message. */
export function ignoredSender(message: Message, botId: string): string | undefined {
  if (message.author.id === botId) return "own message";
  if (message.author.bot) return "from a bot";
  if (message.webhookId !== null) return "from a webhook";
  if (message.system) return "system message";
  return undefined;
}

/** Decides what a message deserves, without doing any of it. */
export function planMessage(message: Message, inputs: PlanInputs): MessagePlan {
  const { botId, config } = inputs;
  const { access } = config;
  const ignored = ignoredSender(message, botId);
  if (ignored !== undefined) return { act: false, reason: ignored };
  const channelId = homeChannelId(message);
  if (access.channelDenylist.has(channelId)) return { act: false, reason: "channel is denylisted" };
  if (access.channelAllowlist.size > 0 && !access.channelAllowlist.has(channelId) && message.inGuild()) {
    return { act: false, reason: "channel is not allowlisted" };
  }
  const text = stripBotMention(message.content, botId);
  const inDm = !message.inGuild();
  if (inDm && !access.allowDms) return { act: false, reason: "direct messages are off" };
  const addressed = addressedToBot(message, { botId, text, inDm, settings: inputs.settings });
  if (text === "" && !addressed) return { act: false, reason: "no text" };

  // The sentiment pass is skipped whenever its result could not be used.
  const emojis = effectiveEmojis(config.moodEmojis, inputs.settings);
  const check: ReactionCheck = { message, text, emojis, inputs };
  const noReactionReason = NO_REACTION.find(({ applies }) => applies(check))?.reason;
  if (noReactionReason !== undefined && !addressed) return { act: false, reason: noReactionReason };
  return {
    act: true,
    react: noReactionReason === undefined,
    reply: addressed,
    text,
    emojis,
    ...(noReactionReason === undefined ? {} : { noReactionReason }),
  };
}

/**
 * Whether a message asks for a reply. In a DM every message with text does; in a guild, a mention does, and so
 * does every message with text in a chat channel. A reply to the bot's message with its ping left on (Discord's
 * default) puts the bot in `mentions`, so it is a mention whatever reply-chain says, as Discord shows it as one;
 * with reply-chain on, a reply with the ping turned off counts too.
 */
function addressedToBot(
  message: Message,
  { botId, text, inDm, settings }: { botId: string; text: string; inDm: boolean; settings: Settings },
): boolean {
  if (inDm) return text !== "";
  if (message.mentions.users.has(botId)) return true;
  if (text === "") return false;
  if (settings["chat-channel"] === "on") return true;
  const repliesToBot = message.reference !== null && message.mentions.repliedUser?.id === botId;
  return settings["reply-chain"] === "on" && repliesToBot;
}

/** What the reasons against a reaction are checked on. */
interface ReactionCheck {
  readonly message: Message;
  readonly text: string;
  readonly emojis: EmojiMap;
  readonly inputs: PlanInputs;
}

/** Why a message gets no mood reaction: the first reason that applies, in this order, is the one given. */
const NO_REACTION: ReadonlyArray<{
  readonly reason: string;
  readonly applies: (c: ReactionCheck) => boolean;
}> = [
  { reason: "no text", applies: (c) => c.text === "" },
  { reason: "member opted out", applies: (c) => c.inputs.optedOut },
  {
    reason: "reactions are off",
    applies: (c) =>
      c.inputs.settings.reactions === "off" || Object.values(c.emojis).every((emoji) => emoji === ""),
  },
  { reason: "no permission to react here", applies: (c) => !mayReact(c.message, c.inputs) },
  {
    reason: "outside the reaction share",
    applies: (c) => shareBucket(c.message.id) >= Number(c.inputs.settings["reaction-share"] ?? 100),
  },
  // Last: a message that would get no reaction anyway is not counted against the model.
  { reason: MODEL_UNAVAILABLE, applies: (c) => !c.inputs.modelReady },
];

/** Discord would accept a reaction here: no recent 403 in the channel, and the bot's permissions allow one. */
function mayReact(message: Message, inputs: PlanInputs): boolean {
  if (inputs.reactionsForbidden) return false;
  // A DM needs none. Without the bot's member record the permissions are unknown: try, and a 403 pauses them.
  if (!message.inGuild()) return true;
  const me = message.guild.members.me;
  if (!me) return true;
  return message.channel.permissionsFor(me)?.has(REACT_PERMISSIONS) ?? false;
}
