import {
  AttachmentBuilder,
  type ChatInputCommandInteraction,
  MessageFlags,
  SlashCommandBuilder,
} from "discord.js";
import type { BotContext } from "../src/discord/context.js";
import { inForceFor } from "../src/discord/inForce.js";
import { answerInteraction } from "../src/discord/send.js";
import type { DeletionReport } from "../src/store/memberData.js";

import type { Wording } from "../src/wording/wording.js";

export const data = new SlashCommandBuilder()
  .setName("privacy")
  .setDescription("What moodbot stores about you; opt out, export or delete it")
  .setDescriptionLocalizations({ "zh-CN": "moodbot 保存了你的哪些数据；退出、导出或删除" })
  .addSubcommand((sub) =>
    sub
      .setName("show")
      .setDescription("What is stored about you, for how long, and how to opt out")
      .setDescriptionLocalizations({ "zh-CN": "保存了你的哪些数据、保存多久、如何退出" }),
  )
  .addSubcommand((sub) =>
    sub
      .setName("opt-out")
      .setDescription("No reactions, counts or stored conversation for you, in every server")
      .setDescriptionLocalizations({ "zh-CN": "在所有服务器不再为你加表情、计数或保存对话" }),
  )
  .addSubcommand((sub) =>
    sub
      .setName("opt-in")
      .setDescription("Undo an opt-out")
      .setDescriptionLocalizations({ "zh-CN": "取消退出" }),
  )
  .addSubcommand((sub) =>
    sub
      .setName("export")
      .setDescription("Everything stored about you, as a JSON file")
      .setDescriptionLocalizations({ "zh-CN": "以 JSON 文件导出保存的关于你的所有数据" }),
  )
  .addSubcommand((sub) =>
    sub
      .setName("delete")
      .setDescription("Delete your stored messages, the bot's replies to them and your mood counts")
      .setDescriptionLocalizations({ "zh-CN": "删除保存的你的消息、机器人对它们的回复和你的情绪计数" }),
  );

/**
 * Every answer is private and reads or writes the store, so it defers first. A store that cannot be reached gets a
 * plain "try again" rather than the generic error: a member asking about their data deserves to know why.
 */
export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { wording } = await inForceFor(interaction, context);
  const memberId = interaction.user.id;
  const sub = interaction.options.getSubcommand();
  try {
    const run = SUBCOMMANDS[sub];
    if (run) await run(interaction, memberId, context, wording);
    else await answerInteraction(interaction, wording.unknownCommand);
  } catch (error) {
    context.logger.warn({ err: error, sub }, "privacy request failed");
    await answerInteraction(interaction, wording.privacy.unavailable);
  }
}

type Subcommand = (
  interaction: ChatInputCommandInteraction,
  memberId: string,
  context: BotContext,
  wording: Wording,
) => Promise<void>;

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  async show(interaction, memberId, context, wording) {
    const stored = await context.memberData.export(memberId);
    const turns = Object.values(stored.history);
    await answerInteraction(
      interaction,
      wording.privacy.show({
        model: context.modelLocation,
        retentionDays: context.config.chat.historyTtlDays,
        optedOut: stored.settings.optedOut,
        turns: turns.reduce((sum, list) => sum + list.length, 0),
        channels: turns.length,
        tallyDays: Object.values(stored.moodTallies).reduce((sum, days) => sum + Object.keys(days).length, 0),
      }),
    );
  },
  async "opt-out"(interaction, memberId, context, wording) {
    await context.privacy.set(memberId, true);
    context.logger.info("member opted out");
    await answerInteraction(interaction, wording.privacy.optedOut(context.config.chat.historyTtlDays));
  },
  async "opt-in"(interaction, memberId, context, wording) {
    await context.privacy.set(memberId, false);
    context.logger.info("member opted in");
    await answerInteraction(interaction, wording.privacy.optedIn);
  },
  async export(interaction, memberId, context, wording) {
    const stored = await context.memberData.export(memberId);
    const turns = Object.values(stored.history).reduce((sum, list) => sum + list.length, 0);
    const servers = Object.keys(stored.moodTallies).length;
    const file = new AttachmentBuilder(Buffer.from(JSON.stringify(stored, null, 2)), {
      name: `moodbot-data-${memberId}.json`,
    });
    const { channels, servers: counted, listedInServers } = stored.index;
    const nothing =
      turns === 0 &&
      servers === 0 &&
      Object.keys(stored.replies).length === 0 &&
      channels.length + counted.length + listedInServers.length === 0;
    const text = nothing ? wording.privacy.exportedNothing : wording.privacy.exported(turns, servers);
    await answerInteraction(interaction, text, { files: [file] });
  },
  /**
   * "Deleted" only once the store has deleted it all. A store that fails midway gets "not deleted yet": the index
   * entries go last, so running it again finds whatever is left.
   */
  async delete(interaction, memberId, context, wording) {
    let report: DeletionReport;
    try {
      report = await context.memberData.delete(memberId);
    } catch (error) {
      context.logger.warn(
        { err: error },
        "member data not deleted: the store failed; the member was told so",
      );
      await answerInteraction(interaction, wording.privacy.notDeleted);
      return;
    }
    context.outcomes.emit({ kind: "deleted", scope: "member", id: memberId });
    await answerInteraction(interaction, wording.privacy.deleted(report.turns, report.erasure));
  },
};
