import { type Message, PermissionFlagsBits } from "discord.js";
import type { Config } from "../config.js";
import { JobCancelledError, ModelUnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { MessageRef } from "../outcomes.js";
import type { EmojiMap, SentimentLabel } from "../sentimentLabels.js";
import { effectiveEmojis, type Settings } from "../store/settings.js";
import { stripBotMention } from "../text/stripMentions.js";
import { isForbidden } from "./channelFaults.js";
import type { BotContext } from "./context.js";
import { homeChannelId } from "./homeChannel.js";
import { moderateMessage } from "./moderation.js";
import { MODEL_UNAVAILABLE, type Report, replyToMessage } from "./reply.js";

export { TYPING_REFRESH_MS } from "./reply.js";

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

export async function onMessage(message: Message, context: BotContext): Promise<void> {
  const receivedAt = performance.now();
  const { metrics } = context;
  metrics.messageSeen();
  const botId = message.client.user.id;
  const ref: MessageRef = {
    shardId: message.guild?.shardId ?? 0,
    guildId: message.guildId,
    channelId: message.channelId,
    messageId: message.id,
  };
  const log = context.logger.child(ref);
  const told = context.outcomes.about(ref);
  // Bots, webhooks and system messages are dropped before any settings are read: most traffic never needs them.
  const ignored = ignoredSender(message, botId);
  if (ignored !== undefined) {
    metrics.messageSkipped(ignored);
    log.debug({ reason: ignored }, "message skipped");
    told({ kind: "skipped", job: "message", reason: ignored });
    return;
  }
  // Moderation is the server's rule: it runs beside the mood and the reply, whatever they decide.
  const moderated = moderateMessage(message, context, log, told);
  // The reads start now, beside every other message's; only the decision waits its turn. Decided in arrival order
  // per channel: mentions take their place in the channel's line in the order sent.
  const reads = readPlanInputs(message, context);
  const decided = await context.arrivals.run(message.channelId, () => decide(message, botId, context, reads));
  if (!decided.plan.act) {
    metrics.messageSkipped(decided.plan.reason);
    log.debug({ reason: decided.plan.reason }, "message skipped");
    told({ kind: "skipped", job: "message", reason: decided.plan.reason });
    await moderated;
    return;
  }
  const { plan, settings, admission, optedOut } = decided;
  log.debug({ react: plan.react, reply: plan.reply }, "message planned");
  if (!plan.react) {
    metrics.messageSkipped(plan.noReactionReason ?? "no reaction");
    log.debug({ reason: plan.noReactionReason }, "no mood reaction");
    told({ kind: "skipped", job: "reaction", reason: plan.noReactionReason ?? "no reaction" });
  }
  await Promise.all([
    moderated,
    plan.react
      ? reactWithMood(message, plan.text, plan.emojis, context, { log, told }, receivedAt)
      : undefined,
    admission
      ? replyToMessage(
          message,
          { text: plan.text, settings, optedOut },
          admission,
          context,
          { log, told },
          receivedAt,
        )
      : undefined,
  ]);
}

/**
 * The settings in force and the author's opt-out, read at once. Neither read throws: while the store is away each
 * answers the last value read (for an opt-out never read, opted out).
 */
async function readPlanInputs(
  message: Message,
  context: BotContext,
): Promise<{ readonly settings: Settings; readonly optedOut: boolean }> {
  const [settings, optedOut] = await Promise.all([
    // Settings set on a channel apply in its threads too.
    context.settings.effective(message.guildId, homeChannelId(message)),
    context.privacy.optedOut(message.author.id),
  ]);
  return { settings, optedOut };
}

/** What a message deserves, and for a reply its place in the channel's line. */
async function decide(
  message: Message,
  botId: string,
  context: BotContext,
  reads: ReturnType<typeof readPlanInputs>,
) {
  const { settings, optedOut } = await reads;
  const plan = planMessage(message, {
    botId,
    config: context.config,
    reactionsForbidden: context.channelFaults.cannotReact(message.channelId),
    settings,
    optedOut,
    modelReady: context.modelReadiness.ready,
  });
  const admission =
    plan.act && plan.reply ? context.chatGate.admit(message.author.id, message.channelId) : undefined;
  return { plan, settings, admission, optedOut };
}

async function reactWithMood(
  message: Message,
  text: string,
  emojis: EmojiMap,
  context: BotContext,
  { log, told }: Report,
  receivedAt: number,
) {
  const { metrics } = context;
  try {
    const outcome = await context.pipeline.analyzeMood(text, {
      priority: "background",
      emojis,
      // Reactions are shared round-robin between servers: one busy server cannot starve the others.
      group: message.guildId ?? "direct-messages",
    });
    if (outcome.kind === "skipped") {
      metrics.messageSkipped(outcome.reason);
      log.debug({ reason: outcome.reason }, "no mood reaction");
      told({ kind: "skipped", job: "reaction", reason: outcome.reason });
      return;
    }
    const { label, confidence } = outcome.result;
    recordMood(message, label, context, log);
    if (outcome.emoji === undefined) {
      metrics.messageSkipped("no emoji for this label");
      log.debug({ label, confidence }, "no emoji for this label");
      told({ kind: "skipped", job: "reaction", reason: "no emoji for this label", label });
      return;
    }
    await message.react(outcome.emoji);
    metrics.reacted(label, (performance.now() - receivedAt) / 1000);
    const cached = outcome.result.cached === true;
    log.debug({ label, confidence, emoji: outcome.emoji, cached }, "reacted");
    told({ kind: "reacted", label, confidence, emoji: outcome.emoji, cached });
  } catch (error) {
    if (error instanceof ModelUnavailableError) {
      // The model went away after the plan was made: the same skip as planMessage's, for the same reason.
      metrics.messageSkipped(MODEL_UNAVAILABLE);
      log.debug({ cause: error.cause }, "no mood reaction");
      told({ kind: "skipped", job: "reaction", reason: MODEL_UNAVAILABLE });
    } else if (error instanceof JobCancelledError) {
      metrics.reactionShed(error.reason);
      log.debug({ reason: error.reason }, "mood reaction dropped");
      told({ kind: "shed", job: "reaction", reason: error.reason });
    } else if (isForbidden(error)) {
      if (context.channelFaults.recordReactionForbidden(message.channelId)) {
        log.warn({ err: error }, "missing permission to react in this channel; pausing reactions here");
      }
      log.debug("mood reaction forbidden");
      told({ kind: "failed", job: "reaction", cutShort: false, error });
    } else {
      log.warn({ err: error }, "mood reaction failed");
      told({ kind: "failed", job: "reaction", cutShort: false, error });
    }
  }
}

/**
 * The tallies count every measured mood, whether or not its label has an emoji; never the text. Neither waits:
 * a reaction is not held up by the store, and a failed count is only logged.
 */
function recordMood(message: Message, label: SentimentLabel, context: BotContext, log: Logger): void {
  const at = message.createdTimestamp;
  const failed = (error: unknown) => log.debug({ err: error }, "mood tally not recorded");
  context.moods.record(message.channelId, label, at).catch(failed);
  if (message.guildId !== null) {
    context.memberData
      .recordMood({ guildId: message.guildId, memberId: message.author.id }, label, at)
      .catch(failed);
  }
}
