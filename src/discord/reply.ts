import type { Message } from "discord.js";
import type { TellOutcome } from "../outcomes/outcomes.js";
import { JobCancelledError, ModelUnavailableError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { Settings } from "../store/settings.js";
import { replyLanguage, WORDING } from "../wording/wording.js";
import { withAttachments } from "./attachments.js";
import { isForbidden } from "./channelFaults.js";
import type { Admission } from "./chatGate.js";
import type { BotContext } from "./context.js";
import { replyWithNotice } from "./send.js";
import { StreamingReply } from "./streamingReply.js";

/*
 * A mention's reply: its place in the channel's line, typing, the streamed reply, and what is said when it cannot
 * be given (refused, the model not ready, an error).
 */

/** Discord shows "typing…" for 10 s; refreshing at 8 s keeps it up without a gap during long generations. */
export const TYPING_REFRESH_MS = 8_000;

/** Where a message's jobs report: its child logger and its outcome teller. */
export interface Report {
  readonly log: Logger;
  readonly told: TellOutcome;
}

/** The reason given (outcome, metric) for work not done because the model cannot take it now. */
export const MODEL_UNAVAILABLE = "model unavailable";

/** What a reply works from: the message's text, the settings in force, and whether to remember the exchange. */
export interface ReplyInput {
  readonly text: string;
  readonly settings: Settings;
  readonly optedOut: boolean;
}

export async function replyToMessage(
  message: Message,
  { text, settings, optedOut }: ReplyInput,
  admission: Admission,
  context: BotContext,
  { log, told }: Report,
  receivedAt: number,
) {
  const language = replyLanguage(settings.language);
  const wording = WORDING[language];
  if (!admission.admitted) {
    log.info({ reason: admission.reason, notified: admission.notify }, "chat refused");
    if (admission.notify) {
      await replyWithNotice(message, wording.refusal[admission.reason], context.channelFaults, log);
    }
    told({ kind: "refused", reason: admission.reason, notified: admission.notify });
    return;
  }
  if (admission.position > 0) {
    log.info({ position: admission.position }, "chat queued");
    told({ kind: "queued", position: admission.position });
  }
  let typing: { stop: () => void } | undefined;
  let stream: StreamingReply | undefined;
  try {
    await admission.turn;
    // Known before any model work: no typing, no prompt, only the notice.
    const readiness = context.modelReadiness;
    if (!readiness.ready) throw new ModelUnavailableError(readiness.cause);
    typing = await startTyping(message, log);
    const stopTyping = typing.stop;
    // Typing shows until the first words do; then the reply itself is the sign of life.
    const reply = new StreamingReply(message, {
      editIntervalMs: context.config.chat.streamEditMs,
      log,
      onFirstText: () => stopTyping(),
    });
    stream = reply;
    const timing = replyTiming(receivedAt);
    const outcome = await context.pipeline.converse({
      channelId: message.channelId,
      guildId: message.guildId,
      authorName: message.member?.displayName ?? message.author.displayName,
      memberId: message.author.id,
      messageId: message.id,
      remember: !optedOut,
      botName: message.guild?.members.me?.displayName ?? message.client.user.username,
      text: await withAttachments(text, message, context.attachments, context.pipeline.messageBudget()),
      onText: (soFar) => {
        timing.text();
        reply.update(soFar);
      },
      logger: log,
      ...(settings.persona === undefined ? {} : { persona: settings.persona }),
      language,
    });
    const sent = await reply.finish(outcome.reply);
    context.metrics.chatReplied(timing.done(outcome.generatedTokens));
    log.info({ chars: outcome.reply.length, messages: sent.length, fromModel: outcome.fromModel }, "replied");
    told({
      kind: "replied",
      reply: outcome.reply,
      messages: sent.length,
      fromModel: outcome.fromModel,
      historyTurns: outcome.historyTurns,
    });
  } catch (error) {
    // A reply that was already showing stays, marked as cut short; the turn is kept in history (the pipeline).
    const markedCutShort = await markCutShort(stream, wording.cutShort, log);
    if (error instanceof ModelUnavailableError && !markedCutShort) {
      // An operator's matter (the log and /readyz say why), not the member's: a short notice, no stack trace.
      log.info({ cause: error.cause }, "chat not answered: the model is not ready");
      await replyWithNotice(message, wording.modelUnavailable, context.channelFaults, log);
      told({ kind: "refused", reason: MODEL_UNAVAILABLE, notified: true });
      return;
    }
    if (error instanceof JobCancelledError) {
      log.debug({ reason: error.reason, cutShort: markedCutShort }, "chat reply dropped");
      told({ kind: "shed", job: "reply", reason: error.reason });
      return;
    }
    if (isForbidden(error)) {
      if (context.channelFaults.recordSendForbidden(message.channelId)) {
        log.warn({ err: error }, "missing permission to send in this channel");
      }
      told({ kind: "failed", job: "reply", cutShort: markedCutShort, error });
      return;
    }
    log.error({ err: error, cutShort: markedCutShort }, "chat reply failed");
    if (!markedCutShort) await replyWithNotice(message, wording.chatError, context.channelFaults, log);
    told({ kind: "failed", job: "reply", cutShort: markedCutShort, error });
  } finally {
    typing?.stop();
    admission.release();
  }
}

/** When a reply's first words came, and how fast the rest followed, for the chat metrics. */
function replyTiming(receivedAt: number) {
  let firstAt: number | undefined;
  return {
    text() {
      firstAt ??= performance.now();
    },
    done(generatedTokens: number): { firstTokenSeconds?: number; tokensPerSecond?: number } {
      if (firstAt === undefined) return {};
      const seconds = (performance.now() - firstAt) / 1000;
      return {
        firstTokenSeconds: (firstAt - receivedAt) / 1000,
        ...(generatedTokens > 1 && seconds > 0 ? { tokensPerSecond: (generatedTokens - 1) / seconds } : {}),
      };
    },
  };
}

/** Marks a reply that stopped midway, in one last edit; a failure to do so is logged, never thrown. */
async function markCutShort(
  stream: StreamingReply | undefined,
  marker: string,
  log: Logger,
): Promise<boolean> {
  if (!stream) return false;
  try {
    return await stream.cutShort(marker);
  } catch (error) {
    log.warn({ err: error }, "could not mark the reply as cut short");
    return false;
  }
}

/** Shows the typing indicator before the slow work starts, and again every TYPING_REFRESH_MS until stopped. */
async function startTyping(message: Message, log: Logger): Promise<{ stop: () => void }> {
  const channel = message.channel;
  if (!channel.isSendable()) return { stop: () => undefined };
  const send = () =>
    channel.sendTyping().catch((error: unknown) => {
      // The indicator is cosmetic: a failure must not cost the user their reply.
      log.debug({ err: error }, "typing indicator failed");
    });
  await send();
  const timer = setInterval(send, TYPING_REFRESH_MS);
  return { stop: () => clearInterval(timer) };
}
