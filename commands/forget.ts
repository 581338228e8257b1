import {
  type ChatInputCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import { languageOf, TEXTS } from "../src/i18n.js";

export const data = new SlashCommandBuilder()
  .setName("forget")
  .setDescription("Clear this channel's conversation history with the bot")
  .setDescriptionLocalizations({ "zh-CN": "清除这个频道和机器人的对话记录" })
  // Discord hides the command from members without Manage Messages; admins can grant it to roles in
  // Server Settings → Integrations, and CHAT_FORGET_ROLES names roles the bot itself accepts.
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages);

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const language = languageOf(interaction.locale);
  // A cached member has a role manager; an uncached one arrives as raw API data with a list of role ids.
  const member = interaction.member;
  const roleIds =
    member === null ? [] : Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
  const allowed =
    interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) === true ||
    roleIds.some((role) => context.config.chat.forgetRoleIds.has(role));
  if (!allowed) {
    await interaction.reply({
      content: TEXTS[language].forgetDenied,
      flags: MessageFlags.Ephemeral,
      allowedMentions: NO_MENTIONS,
    });
    return;
  }
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  await context.pipeline.forget(interaction.channelId);
  context.logger.info("channel history cleared");
  await interaction.editReply({ content: TEXTS[language].forgotten, allowedMentions: NO_MENTIONS });
}
