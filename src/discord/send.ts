import type { Message, MessageMentionOptions } from "discord.js";
import { splitMessage } from "../text/splitMessage.js";

/**
 * Every message the bot sends or edits carries this: nothing in it may ping anyone, whatever the model wrote.
 * Sent to Discord as `allowed_mentions: { parse: [] }`.
 */
export const NO_MENTIONS: MessageMentionOptions = Object.freeze({ parse: [] });

/**
 * Replies to a message with text of any length: the first chunk references the message, the rest follow in the
 * channel. The text must already be sanitised; this only splits it and forbids mentions.
 */
export async function replyInChunks(message: Message, text: string): Promise<Message[]> {
  const chunks = splitMessage(text);
  const sent: Message[] = [];
  const channel = message.channel;
  for (const [index, content] of chunks.entries()) {
    if (index === 0) sent.push(await message.reply({ content, allowedMentions: NO_MENTIONS }));
    else if (channel.isSendable()) sent.push(await channel.send({ content, allowedMentions: NO_MENTIONS }));
  }
  return sent;
}
