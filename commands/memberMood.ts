import {
  ApplicationCommandType,
  AttachmentBuilder,
  ContextMenuCommandBuilder,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  type UserContextMenuCommandInteraction,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { DAY_MS } from "../src/platform/time.js";
import { dayOf } from "../src/store/moodTally.js";
import { countsLine } from "./mood.js";

const DAYS = 7;

/**
 * Right-click a member → Apps → "Mood of this member": their mood counts in this server over 7 days, with a chart,
 * privately. A member's mood is theirs: only they, or a moderator with Manage Messages, may see it.
 */
export const data = new ContextMenuCommandBuilder()
  .setName("Mood of this member")
  .setNameLocalizations({ "zh-CN": "这位成员的情绪" })
  .setType(ApplicationCommandType.User)
  .setContexts(InteractionContextType.Guild);

export async function execute(
  interaction: UserContextMenuCommandInteraction,
  context: BotContext,
): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { wording, emojis } = await inForceFor(interaction, context);
  if (!interaction.inGuild()) return answerInteraction(interaction, wording.memberMood.guildOnly);
  const target = interaction.targetUser;
  const name =
    interaction.targetMember && "displayName" in interaction.targetMember
      ? interaction.targetMember.displayName
      : target.displayName;
  const self = target.id === interaction.user.id;
  if (!self && interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) !== true) {
    return answerInteraction(interaction, wording.memberMood.denied);
  }
  if (await context.privacy.optedOut(target.id)) {
    return answerInteraction(interaction, wording.memberMood.optedOut(name));
  }
  const days = await context.memberData.memberMood(
    { guildId: interaction.guildId, memberId: target.id },
    DAYS,
  );
  const summary = countsLine(days, emojis, wording);
  const firstDay = dayOf(Date.now()) - DAYS + 1;
  const captions = days.map((_, index) => new Date((firstDay + index) * DAY_MS).toISOString().slice(5, 10));
  const chart = context.charts.render(days, captions, {
    title: wording.memberMood.title(name),
    legend: wording.labels,
  });
  await answerInteraction(interaction, wording.memberMood.summary(name, summary), {
    files: [new AttachmentBuilder(chart, { name: "member-mood.png" })],
  });
}
