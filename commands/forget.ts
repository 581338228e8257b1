import {
  type ChatInputCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";

export const data = new SlashCommandBuilder()
  .setName("forget")
  .setDescription("Clear this channel's conversation history with the bot")
  .setDescriptionLocalizations({ "zh-CN": "清除这个频道和机器人的对话记录" })
  // Discord hides the command from members without Manage Messages; admins can grant it to roles in
  // Server Settings → Integrations, and CHAT_FORGET_ROLES names roles the bot itself accepts.
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages);

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { wording } = await inForceFor(interaction, context);
  // A cached member has a role manager; an uncached one arrives as raw API data with a list of role ids.
  const member = interaction.member;
  const roleIds =
    member === null ? [] : Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
  const allowed =
    interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) === true ||
    roleIds.some((role) => context.config.chat.forgetRoleIds.has(role));
  if (!allowed) {
    await answerInteraction(interaction, wording.forgetDenied);
    return;
  }
  await context.pipeline.forget(interaction.channelId);
  context.logger.info("channel history cleared");
  context.outcomes.emit({ kind: "deleted", scope: "channel", id: interaction.channelId });
  await answerInteraction(interaction, wording.forgotten);
}
