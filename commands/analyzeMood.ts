import {
  ApplicationCommandType,
  ContextMenuCommandBuilder,
  type MessageContextMenuCommandInteraction,
  MessageFlags,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import { languageOf, TEXTS } from "../src/i18n.js";
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
  const language = languageOf(interaction.locale);
  const outcome = await context.pipeline.analyzeMood(interaction.targetMessage.content, {
    priority: "interactive",
  });
  const content =
    outcome.kind === "skipped"
      ? TEXTS[language].noTextInMessage
      : formatSentimentAnswer(outcome.result, outcome.emoji, language);
  await interaction.editReply({ content, allowedMentions: NO_MENTIONS });
}
