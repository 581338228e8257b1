import type { Guild } from "discord.js";
import type { BotContext } from "./context.js";

/**
 * Discord events that end data: a deleted message leaves the channel's history (with the bot's reply to it), and a
 * server that removed the bot has everything stored for it purged. Failures reach the listener wrapper's log;
 * retention removes a turn whose deletion failed in the end.
 */
export async function onMessagesDeleted(
  channelId: string,
  messageIds: readonly string[],
  context: BotContext,
): Promise<void> {
  const removed = await context.memberData.forgetMessages(channelId, messageIds);
  if (removed > 0) {
    context.logger.info(
      { channelId, messages: messageIds.length, turns: removed },
      "deleted messages forgotten",
    );
  }
  for (const id of messageIds) context.outcomes.emit({ kind: "deleted", scope: "messages", id });
}

export async function onGuildRemoved(guild: Guild, context: BotContext): Promise<void> {
  context.logger.info({ guildId: guild.id }, "removed from the server: purging its data");
  await context.memberData.purgeGuild(guild.id, [...guild.channels.cache.keys()]);
  context.outcomes.emit({ kind: "deleted", scope: "guild", id: guild.id });
}
