import type { Message } from "discord.js";
import { JobCancelledError, ModelUnavailableError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { EmojiMap, SentimentLabel } from "../platform/sentimentLabels.js";
import { isForbidden } from "./channelFaults.js";
import type { BotContext } from "./context.js";
import { MODEL_UNAVAILABLE, type Report } from "./reply.js";

/*
 * A message's mood reaction: the sentiment pass, the mood tallies, the emoji added, and what is counted and told
 * when there is none (skipped, shed, forbidden, failed).
 */

export async function reactWithMood(
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
