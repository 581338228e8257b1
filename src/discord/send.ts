import {
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
  type AttachmentBuilder,
  type Message,
  MessageFlags,
  type MessageMentionOptions,
  type RepliableInteraction,
} from "discord.js";

import type { Logger } from "../platform/logger.js";
import { cleanReply } from "../text/sanitizeReply.js";
import { splitMessage } from "../text/splitMessage.js";
import { type ChannelFaults, isForbidden } from "./channelFaults.js";

/*
 * The one way text leaves the bot: model text is cleaned, capped and split here, and every send and edit goes
 * through discord.js with mentions turned off by the client's default (NO_MENTIONS).
 */

/**
 * Nothing the bot sends may ping anyone, whatever the model wrote. Set once, as the discord.js client's default,
 * which applies it to every message, edit and interaction response as `allowed_mentions: { parse: [] }`.
 */
export const NO_MENTIONS: MessageMentionOptions = Object.freeze({ parse: [] });

/** Text as it goes out: cleaned of template tokens and mass mentions, capped, and cut into Discord messages. */
export function outgoingMessages(text: string): string[] {
  return splitMessage(cleanReply(text));
}

/** A short notice from the bot in reply to a message (never model output); failures are logged, never thrown. */
export async function replyWithNotice(
  message: Message,
  content: string,
  faults: ChannelFaults,
  log: Logger,
): Promise<void> {
  if (faults.cannotSend(message.channelId)) return;
  try {
    await message.reply({ content });
  } catch (error) {
    if (isForbidden(error)) faults.recordSendForbidden(message.channelId);
    log.warn({ err: error }, "could not send a notice");
  }
}

/**
 * Answers a command: into its deferred reply when there is one, else as a new private reply. Text longer than one
 * message continues in follow-ups; `fallback` is sent when the text comes out empty.
 */
export async function answerInteraction(
  interaction: RepliableInteraction,
  text: string,
  options: {
    readonly fallback?: string;
    readonly files?: readonly AttachmentBuilder[];
    /** Buttons under the answer; an empty list removes those it had. */
    readonly components?: readonly APIActionRowComponent<APIComponentInMessageActionRow>[];
  } = {},
): Promise<void> {
  const [first = options.fallback ?? "", ...rest] = outgoingMessages(text);
  const extra = {
    ...(options.files === undefined ? {} : { files: [...options.files] }),
    ...(options.components === undefined ? {} : { components: [...options.components] }),
  };
  if (interaction.deferred || interaction.replied) {
    await interaction.editReply({ content: first, ...extra });
  } else {
    await interaction.reply({ content: first, flags: MessageFlags.Ephemeral, ...extra });
  }
  for (const content of rest) await interaction.followUp({ content });
}
