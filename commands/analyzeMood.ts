import {
  ApplicationCommandType,
  ContextMenuCommandBuilder,
  type MessageContextMenuCommandInteraction,
  MessageFlags,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { formatSentimentAnswer } from "./sentimentAnswer.js";

/** Right-click a message → Apps → "Analyze mood": the message's mood, for the asker's eyes only. */
export const data = new ContextMenuCommandBuilder()
  .setName("Analyze mood")
  .setNameLocalizations({ "zh-CN": "分析情绪" })
  .setType(ApplicationCommandType.Message);

export async function execute(
  interaction: MessageContextMenuCommandInteraction,
  context: BotContext,
): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { wording, emojis } = await inForceFor(interaction, context);
  const outcome = await context.pipeline.analyzeMood(interaction.targetMessage.content, {
    priority: "interactive",
    emojis,
  });
  const content =
    outcome.kind === "skipped"
      ? wording.noTextInMessage
      : formatSentimentAnswer(outcome.result, outcome.emoji, wording);
  await answerInteraction(interaction, content);
}
