import { type Message, PermissionFlagsBits } from "discord.js";
import { errorMessage, JobCancelledError } from "../errors.js";
import type { Logger } from "../logger.js";
import { stripBotMention } from "../text/stripMentions.js";
import type { BotContext } from "./context.js";
import { NO_MENTIONS, replyInChunks } from "./send.js";

/** Discord shows "typing…" for 10 s; refreshing at 8 s keeps it up without a gap during long generations. */
export const TYPING_REFRESH_MS = 8_000;

export const CHAT_ERROR_NOTICE =
  "Sorry, something went wrong while I was thinking. Please try again in a moment.";

export type MessagePlan =
  | { readonly act: false; readonly reason: string }
  | {
      readonly act: true;
      readonly react: boolean;
      /** Why there is no reaction, when there is text but reacting is pointless here. */
      readonly noReactionReason?: string;
      readonly reply: boolean;
      readonly text: string;
    };

/** Adding a reaction needs both: Discord refuses the first reaction on a message without Read Message History. */
const REACT_PERMISSIONS = [PermissionFlagsBits.AddReactions, PermissionFlagsBits.ReadMessageHistory];

/** Decides what a message deserves, without doing any of it. */
export function planMessage(message: Message, botId: string, reactionsEnabled: boolean): MessagePlan {
  if (message.author.id === botId) return { act: false, reason: "own message" };
  if (message.author.bot) return { act: false, reason: "from a bot" };
  if (message.webhookId !== null) return { act: false, reason: "from a webhook" };
  if (message.system) return { act: false, reason: "system message" };
  if (!message.inGuild()) return { act: false, reason: "direct messages are off" };
  const text = stripBotMention(message.content, botId);
  const mentioned = message.mentions.users.has(botId);
  if (text === "" && !mentioned) return { act: false, reason: "no text" };
  // The sentiment pass is skipped whenever its result could not be used.
  const me = message.guild.members.me;
  const canReact = me ? (message.channel.permissionsFor(me)?.has(REACT_PERMISSIONS) ?? false) : true;
  const noReactionReason =
    text === ""
      ? "no text"
      : !reactionsEnabled
        ? "reactions are off"
        : !canReact
          ? "no permission to react here"
          : undefined;
  if (noReactionReason !== undefined && !mentioned) return { act: false, reason: noReactionReason };
  return {
    act: true,
    react: noReactionReason === undefined,
    reply: mentioned,
    text,
    ...(noReactionReason === undefined ? {} : { noReactionReason }),
  };
}

export async function onMessage(message: Message, context: BotContext): Promise<void> {
  const botId = message.client.user.id;
  const log = context.logger.child({
    guildId: message.guildId,
    channelId: message.channelId,
    messageId: message.id,
  });
  const reactionsEnabled = Object.values(context.config.moodEmojis).some((emoji) => emoji !== "");
  const plan = planMessage(message, botId, reactionsEnabled);
  if (!plan.act) {
    log.debug({ reason: plan.reason }, "message skipped");
    return;
  }
  if (!message.inGuild()) return;
  await Promise.all([
    plan.react ? reactWithMood(message, plan.text, context, log) : undefined,
    plan.reply ? replyToMention(message, plan.text, context, log) : undefined,
  ]);
}

async function reactWithMood(message: Message<true>, text: string, context: BotContext, log: Logger) {
  try {
    const outcome = await context.pipeline.analyzeMood(text, { priority: "background" });
    if (outcome.kind === "skipped") {
      log.debug({ reason: outcome.reason }, "no mood reaction");
      return;
    }
    const { label, confidence } = outcome.result;
    if (outcome.emoji === undefined) {
      log.debug({ label, confidence }, "no emoji for this label");
      return;
    }
    await message.react(outcome.emoji);
    log.debug({ label, confidence, emoji: outcome.emoji }, "reacted");
  } catch (error) {
    if (error instanceof JobCancelledError) {
      log.debug({ reason: error.reason }, "mood reaction dropped");
      return;
    }
    log.warn({ err: error }, "mood reaction failed");
  }
}

async function replyToMention(message: Message<true>, text: string, context: BotContext, log: Logger) {
  const typing = await startTyping(message, log);
  try {
    const outcome = await context.pipeline.converse({
      channelId: message.channelId,
      authorName: message.member?.displayName ?? message.author.displayName,
      botName: message.guild.members.me?.displayName ?? message.client.user.username,
      text,
    });
    typing.stop();
    await replyInChunks(message, outcome.reply);
    log.info({ chars: outcome.reply.length, fromModel: outcome.fromModel }, "replied");
  } catch (error) {
    if (error instanceof JobCancelledError) {
      log.debug({ reason: error.reason }, "chat reply dropped");
      return;
    }
    log.error({ err: error }, "chat reply failed");
    await message
      .reply({ content: CHAT_ERROR_NOTICE, allowedMentions: NO_MENTIONS })
      .catch((sendError: unknown) => {
        log.warn({ err: errorMessage(sendError) }, "could not send the error notice either");
      });
  } finally {
    typing.stop();
  }
}

/** Shows the typing indicator before the slow work starts, and again every TYPING_REFRESH_MS until stopped. */
async function startTyping(message: Message<true>, log: Logger): Promise<{ stop: () => void }> {
  const send = () =>
    message.channel.sendTyping().catch((error: unknown) => {
      // The indicator is cosmetic: a failure must not cost the user their reply.
      log.debug({ err: errorMessage(error) }, "typing indicator failed");
    });
  await send();
  const timer = setInterval(send, TYPING_REFRESH_MS);
  return { stop: () => clearInterval(timer) };
}
