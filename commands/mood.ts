import { AttachmentBuilder, type ChatInputCommandInteraction, SlashCommandBuilder } from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import { type EmojiMap, SENTIMENT_LABELS } from "../src/platform/sentimentLabels.js";
import { HOUR_MS } from "../src/platform/time.js";
import { emptyCounts, type MoodCounts } from "../src/store/moodTally.js";
import type { Wording } from "../src/wording/wording.js";

export const data = new SlashCommandBuilder()
  .setName("mood")
  .setDescription("This channel's mood over the last 24 hours or 7 days, with a chart")
  .setDescriptionLocalizations({ "zh-CN": "这个频道最近 24 小时或 7 天的情绪，附图表" })
  .addStringOption((option) =>
    option
      .setName("period")
      .setDescription("24h (default) or 7d")
      .addChoices({ name: "24 hours", value: "24h" }, { name: "7 days", value: "7d" }),
  );

/** Sums hourly counts into buckets of `size` hours. */
export function bucketCounts(hours: readonly MoodCounts[], size: number): MoodCounts[] {
  const buckets: MoodCounts[] = [];
  for (let start = 0; start < hours.length; start += size) {
    const bucket = emptyCounts();
    for (const counts of hours.slice(start, start + size)) {
      for (const label of SENTIMENT_LABELS) bucket[label] += counts[label];
    }
    buckets.push(bucket);
  }
  return buckets;
}

/** The counts over a period, summed, as one line: each label's emoji, name and count. */
export function countsLine(counts: readonly MoodCounts[], emojis: EmojiMap, wording: Wording): string {
  const total = bucketCounts(counts, counts.length)[0] ?? emptyCounts();
  return SENTIMENT_LABELS.map((label) =>
    `${emojis[label]} ${wording.labels[label]} ${total[label]}`.trim(),
  ).join(" · ");
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.deferReply();
  const { wording, emojis } = await inForceFor(interaction, context);
  const week = interaction.options.getString("period") === "7d";
  const hours = week ? 7 * 24 : 24;
  const now = Date.now();
  const toHour = Math.floor(now / HOUR_MS);
  const hourly = await context.moods.hours(interaction.channelId, toHour - hours + 1, toHour);
  const buckets = week ? bucketCounts(hourly, 24) : hourly;
  const captions = buckets.map((_, index) => {
    const start = new Date((toHour - hours + 1 + index * (week ? 24 : 1)) * HOUR_MS);
    return week ? start.toISOString().slice(5, 10) : `${start.getUTCHours()}h`;
  });
  const summary = countsLine(hourly, emojis, wording);
  const chart = context.charts.render(buckets, captions, {
    title: wording.moodChartTitle(week),
    legend: wording.labels,
  });
  await answerInteraction(interaction, wording.moodSummary(week, summary), {
    files: [new AttachmentBuilder(chart, { name: "mood.png" })],
  });
}
