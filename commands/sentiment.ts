import { type ChatInputCommandInteraction, SlashCommandBuilder } from "discord.js";
import { DEFAULT_MOOD_EMOJIS } from "../src/config.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import type { SentimentResult } from "../src/llm/sentiment.js";
import { parseMoodEmojis, SENTIMENT_LABELS } from "../src/moodEmojis.js";

/** Discord's own cap on a string option; the model reads at most its sentiment token budget of it. */
const MAX_TEXT_LENGTH = 4000;

export const data = new SlashCommandBuilder()
  .setName("sentiment")
  .setDescription("Read the mood of a text: positive, negative or neutral, with a confidence")
  .addStringOption((option) =>
    option.setName("text").setDescription("The text to read").setRequired(true).setMaxLength(MAX_TEXT_LENGTH),
  );

const DEFAULT_EMOJIS = parseMoodEmojis(DEFAULT_MOOD_EMOJIS);

const percent = (value: number) => `${Math.round(value * 100)}%`;

/** The answer: emoji, label and confidence, then all three probabilities in small print. */
export function formatSentimentAnswer(result: SentimentResult, emoji: string | undefined): string {
  const shown = emoji ?? DEFAULT_EMOJIS[result.label];
  const breakdown = SENTIMENT_LABELS.map((label) => `${label} ${percent(result.probabilities[label])}`).join(
    " · ",
  );
  return `${shown} **${result.label}** (confidence ${percent(result.confidence)})\n-# ${breakdown}`;
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  // The model may be busy with other work; defer first so Discord's 3-second deadline never passes.
  await interaction.deferReply();
  const text = interaction.options.getString("text", true);
  const outcome = await context.pipeline.analyzeMood(text, { priority: "interactive" });
  const content =
    outcome.kind === "skipped"
      ? "There is no text to read there. Try `/sentiment text: what a great day!`"
      : formatSentimentAnswer(outcome.result, outcome.emoji);
  await interaction.editReply({ content, allowedMentions: NO_MENTIONS });
}
