import type { Message } from "discord.js";

/**
 * The channel that owns a message's settings, access lists and moderation coverage: a thread's parent, else the
 * channel itself.
 */
export function homeChannelId(message: Message): string {
  return message.channel.isThread() ? (message.channel.parentId ?? message.channelId) : message.channelId;
}
