import type { RepliableInteraction } from "discord.js";
import type { EmojiMap } from "../platform/sentimentLabels.js";
import { effectiveEmojis } from "../store/settings.js";
import { type Language, replyLanguage, WORDING, type Wording } from "../wording/wording.js";
import type { BotContext } from "./context.js";

/** What applies where a command was used: its /settings (a thread takes its parent's) over the config. */
export interface InForce {
  readonly language: Language;
  readonly wording: Wording;
  readonly emojis: EmojiMap;
}

/**
 * Reads the channel's settings for a command. It may read the store, so a command calls it after deferring (or
 * when it answers at once, knowing a cached read is quick and a failed one falls back to the defaults).
 */
export async function inForceFor(interaction: RepliableInteraction, context: BotContext): Promise<InForce> {
  const channel = interaction.channel;
  const home = (channel?.isThread() ? channel.parentId : undefined) ?? interaction.channelId ?? "";
  const settings = await context.settings.effective(interaction.guildId, home);
  const language = replyLanguage(settings.language, interaction.locale);
  return {
    language,
    wording: WORDING[language],
    emojis: effectiveEmojis(context.config.moodEmojis, settings),
  };
}
