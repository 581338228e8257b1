import { type ChatInputCommandInteraction, type Message, SlashCommandBuilder } from "discord.js";
import { joinFiles, type Layout } from "../src/discord/attachmentReader.js";
import { attachmentRefs } from "../src/discord/attachments.js";
import type { BotContext, Command } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import type { LabelResult } from "../src/llm/llm.js";
import type { Task } from "../src/tasks/tasks.js";
import type { ReadingBudget } from "../src/text/inputBudget.js";
import { normaliseInput } from "../src/text/normaliseInput.js";
import { transcript } from "../src/transcript/transcript.js";
import { percent } from "../src/wording/wording.js";

export function formatLabelAnswer(result: LabelResult<string>, labels: readonly string[]): string {
  const breakdown = labels
    .map((label) => `${label} ${percent(result.probabilities[label] ?? 0)}`)
    .join(" · ");
  return `**${result.label}** (${percent(result.confidence)})\n-# ${breakdown}`;
}

/**
 * A channel's messages, oldest first, with their text attachments, as the transcript a channel task reads: the
 * messages' texts and their files share one budget, the task's input room. The messages of members who opted out
 * are left out (and so is one whose choice cannot be read: it fails closed), and so are their files.
 */
async function channelTranscript(
  messages: Iterable<Message>,
  context: BotContext,
  budget: ReadingBudget,
): Promise<string> {
  // By id, not timestamp: two messages of the same millisecond keep their order (a snowflake counts within it).
  const ordered = [...messages].sort((a, b) => compareSnowflakes(a.id, b.id));
  const optedOut = await Promise.all(ordered.map((message) => context.privacy.optedOut(message.author.id)));
  const included = ordered.filter((_, index) => !optedOut[index]);
  context.logger.debug(
    { messages: included.length, optedOutLeftOut: ordered.length - included.length },
    "channel task input",
  );
  const authors = included.map((message) => message.member?.displayName ?? message.author.displayName);
  const lines: Layout = (read) =>
    transcript(read.map((message, index) => ({ author: authors[index] ?? "", text: joinFiles(message) })));
  return context.attachments.readWithin(
    included.map((message) => ({ text: message.content, files: attachmentRefs(message) })),
    lines,
    budget,
  );
}

function compareSnowflakes(a: string, b: string): number {
  const [x, y] = [BigInt(a), BigInt(b)];
  if (x === y) return 0;
  return x < y ? -1 : 1;
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
  const { wording } = await inForceFor(interaction, context);
  const input = await taskInput(task, interaction, context);
  if (input === "") return answerInteraction(interaction, wording.noText);
  const outcome = await context.pipeline.runTask(task, input);
  if (outcome.kind === "labels") {
    const { label, method, evaluatedTokens } = outcome.result;
    context.logger.debug({ task: task.name, label, method, evaluatedTokens }, "task classified");
    const labels = task.output.kind === "labels" ? task.output.labels : [];
    return answerInteraction(interaction, formatLabelAnswer(outcome.result, labels));
  }
  return answerInteraction(interaction, outcome.text, { fallback: wording.noAnswer });
}

/** The text a task reads: the command's text option, or the channel's last messages. */
async function taskInput(
  task: Task,
  interaction: ChatInputCommandInteraction,
  context: BotContext,
): Promise<string> {
  if (task.input.kind === "text") return normaliseInput(interaction.options.getString("text", true));
  const count = interaction.options.getInteger("count") ?? task.input.defaultCount;
  const messages = interaction.channel
    ? await interaction.channel.messages.fetch({ limit: count })
    : undefined;
  return channelTranscript(messages?.values() ?? [], context, context.pipeline.taskInputBudget(task));
}
