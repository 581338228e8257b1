import type { Message } from "discord.js";
import type { MessageRef } from "../outcomes/outcomes.js";
import type { Settings } from "../store/settings.js";
import type { BotContext } from "./context.js";
import { homeChannelId } from "./homeChannel.js";
import { ignoredSender, planMessage } from "./messagePlan.js";
import { moderateMessage } from "./moderation.js";
import { reactWithMood } from "./reaction.js";
import { replyToMessage } from "./reply.js";

/*
 * The messageCreate listener: it reads what the plan needs, plans (messagePlan.ts), and dispatches the moderation
 * check (moderation.ts), the mood reaction (reaction.ts) and the reply (reply.ts), side by side.
 */

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
