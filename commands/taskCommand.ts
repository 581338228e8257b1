import { type ChatInputCommandInteraction, type Message, SlashCommandBuilder } from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { NO_MENTIONS } from "../src/discord/send.js";
import { languageOf, TEXTS } from "../src/i18n.js";
import type { LabelResult } from "../src/llm/labelClassifier.js";
import type { Task } from "../src/tasks.js";
import { normaliseInput } from "../src/text/normaliseInput.js";
import { capReply, sanitizeReply } from "../src/text/sanitizeReply.js";
import { splitMessage } from "../src/text/splitMessage.js";
import type { Command } from "./command.js";

const percent = (value: number) => `${Math.round(value * 100)}%`;

export function formatLabelAnswer(result: LabelResult<string>, labels: readonly string[]): string {
  const breakdown = labels
    .map((label) => `${label} ${percent(result.probabilities[label] ?? 0)}`)
    .join(" · ");
  return `**${result.label}** (${percent(result.confidence)})\n-# ${breakdown}`;
}

/** The last `count` messages of a channel, oldest first, one "name: text" line each; empty ones are left out. */
export function channelTranscript(messages: readonly Message[]): string {
  return [...messages]
    .sort((a, b) => a.createdTimestamp - b.createdTimestamp)
    .map((message) => [
      message.member?.displayName ?? message.author.displayName,
      normaliseInput(message.content),
    ])
    .filter(([, text]) => text !== "")
    .map(([name, text]) => `${name}: ${text}`)
    .join("\n");
}

/** Turns a prompt-defined task into a slash command: `/name text:<…>`, or `/name [count]` for channel tasks. */
export function taskCommand(task: Task): Command {
  const builder = new SlashCommandBuilder().setName(task.name).setDescription(task.description);
  if (task.descriptionZh) builder.setDescriptionLocalizations({ "zh-CN": task.descriptionZh });
  if (task.input.kind === "text") {
    builder.addStringOption((option) =>
      option.setName("text").setDescription("The text to read").setRequired(true).setMaxLength(4000),
    );
  } else {
    const { maxCount, defaultCount } = task.input;
    builder.addIntegerOption((option) =>
      option
        .setName("count")
        .setDescription(`How many recent messages (default ${defaultCount}, at most ${maxCount})`)
        .setMinValue(1)
        .setMaxValue(maxCount),
    );
  }
  return {
    data: builder,
    async execute(interaction, context: BotContext) {
      if (!interaction.isChatInputCommand()) return;
      await runTask(task, interaction, context);
    },
  };
}

async function runTask(
  task: Task,
  interaction: ChatInputCommandInteraction,
  context: BotContext,
): Promise<void> {
  await interaction.deferReply();
  const language = languageOf(interaction.locale);
  let input: string;
  if (task.input.kind === "text") {
    input = normaliseInput(interaction.options.getString("text", true));
  } else {
    const count = interaction.options.getInteger("count") ?? task.input.defaultCount;
    const messages = interaction.channel
      ? await interaction.channel.messages.fetch({ limit: count })
      : undefined;
    input = channelTranscript([...(messages?.values() ?? [])]);
  }
  if (input === "") {
    await interaction.editReply({ content: TEXTS[language].noText, allowedMentions: NO_MENTIONS });
    return;
  }
  const outcome = await context.pipeline.runTask(task, input);
  if (outcome.kind === "labels") {
    const labels = task.output.kind === "labels" ? task.output.labels : [];
    await interaction.editReply({
      content: formatLabelAnswer(outcome.result, labels),
      allowedMentions: NO_MENTIONS,
    });
    return;
  }
  const [first = TEXTS[language].noAnswer, ...rest] = splitMessage(capReply(sanitizeReply(outcome.text)));
  await interaction.editReply({ content: first, allowedMentions: NO_MENTIONS });
  for (const content of rest) await interaction.followUp({ content, allowedMentions: NO_MENTIONS });
}
