import { type ChatInputCommandInteraction, MessageFlags, SlashCommandBuilder } from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { formatSentimentAnswer } from "./sentimentAnswer.js";

/** Discord's own cap on a string option; the model reads at most its sentiment token budget of it. */
const MAX_TEXT_LENGTH = 4000;

export const data = new SlashCommandBuilder()
  .setName("sentiment")
  .setDescription("Read the mood of a text: positive, negative or neutral, with a confidence")
  .setDescriptionLocalizations({ "zh-CN": "读出一段文字的情绪：正面、负面或中性，并给出置信度" })
  .addStringOption((option) =>
    option
      .setName("text")
      .setDescription("The text to read")
      .setDescriptionLocalizations({ "zh-CN": "要读的文字" })
      .setRequired(true)
      .setMaxLength(MAX_TEXT_LENGTH),
  )
  .addBooleanOption((option) =>
    option
      .setName("private")
      .setDescription("Only you see the answer")
      .setDescriptionLocalizations({ "zh-CN": "只有你能看到结果" }),
  );

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const hidden = interaction.options.getBoolean("private") ?? false;
  // The model may be busy with other work; defer first so Discord's 3-second deadline never passes.
  await interaction.deferReply(hidden ? { flags: MessageFlags.Ephemeral } : {});
  const { wording, emojis } = await inForceFor(interaction, context);
  const text = interaction.options.getString("text", true);
  const outcome = await context.pipeline.analyzeMood(text, { priority: "interactive", emojis });
  const content =
    outcome.kind === "skipped"
      ? wording.noText
      : formatSentimentAnswer(outcome.result, outcome.emoji, wording);
  await answerInteraction(interaction, content);
}
